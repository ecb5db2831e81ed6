# seedbench: `make demo` runs the main job, `make test` the test suite. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TF_STAMP := $(VENV)/.installed-tensorflow
LINTED := seedbench components experiments examples bench tests
DEBIAN_PACKAGES := dataset-fashion-mnist chromium fonts-liberation
# a local single-node Slurm for --engine slurm (make slurm-up) and its tests
SLURM_PACKAGES := slurmctld slurmd slurm-client munge

.PHONY: demo test lint venv debian-packages slurm-packages slurm-up slurm-down clean-store help

help:
	@echo "make demo   - create .venv if missing, run the demo grid on the bundled digits and print the report"
	@echo "make test   - create .venv (with the tensorflow group) if missing, lint, run the test suite"
	@echo "make slurm-up / slurm-down - start / stop a local single-node Slurm for --engine slurm (docs/cluster.md)"

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $(STAMP)

# TensorFlow (framework: tensorflow) is an optional group: the tests need it, the demo does not.
$(TF_STAMP): $(STAMP) pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test,tensorflow]'
	touch $(TF_STAMP)

venv: $(STAMP)

# Debian packages the tests use (the real Fashion-MNIST; Chromium renders the HTML report). Installed
# when this runs as root with apt-get and one is missing; otherwise the tests that need them say so.
debian-packages:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null && \
	   { [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null; }; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES)) \
	    || echo "warning: could not install $(DEBIAN_PACKAGES)"; \
	fi

# Debian's Slurm packages, without their recommends (no systemd units are started: cluster/slurm/up.sh
# runs the daemons itself). Installed when this runs as root with apt-get and one is missing; otherwise
# the Slurm tests skip and say why.
slurm-packages:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null && \
	   { ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; }; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SLURM_PACKAGES)) \
	    || echo "warning: could not install $(SLURM_PACKAGES)"; \
	fi

# Start (or find running) the local Slurm; its last line is the `export SLURM_CONF=...` clients need.
slurm-up: slurm-packages
	@cluster/slurm/up.sh

slurm-down:
	@cluster/slurm/down.sh

demo: $(STAMP)
	$(BIN)/seedbench sweep experiments/demo.yaml
	$(BIN)/seedbench sweep experiments/demo-rbd.yaml
	$(BIN)/seedbench report --baseline sgd --metric val_acc --where "dataset = 'digits' AND epochs = 10 AND limit_train IS NULL"
	$(BIN)/seedbench plot --kind box --metric test_acc --by arm --within model --where "dataset = 'digits' AND epochs = 10 AND limit_train IS NULL" -o demo-test-acc.png

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: $(TF_STAMP) debian-packages slurm-packages lint
	$(BIN)/python -m pytest

clean-store:
	rm -rf storage .machinable.sqlite
