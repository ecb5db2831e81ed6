# seedbench: `make demo` runs the main job, `make test` the test suite. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TF_STAMP := $(VENV)/.installed-tensorflow
LINTED := seedbench components experiments examples bench tests
DEBIAN_PACKAGES := dataset-fashion-mnist chromium fonts-liberation

.PHONY: demo test lint venv debian-packages clean-store help

help:
	@echo "make demo   - create .venv if missing, run the demo grid on the bundled digits and print the report"
	@echo "make test   - create .venv (with the tensorflow group) if missing, lint, run the test suite"

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

demo: $(STAMP)
	$(BIN)/seedbench sweep experiments/demo.yaml
	$(BIN)/seedbench sweep experiments/demo-rbd.yaml
	$(BIN)/seedbench report --baseline sgd --metric val_acc --where "dataset = 'digits' AND epochs = 10 AND limit_train IS NULL"
	$(BIN)/seedbench plot --kind box --metric test_acc --by arm --within model --where "dataset = 'digits' AND epochs = 10 AND limit_train IS NULL" -o demo-test-acc.png

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: $(TF_STAMP) debian-packages lint
	$(BIN)/python -m pytest

clean-store:
	rm -rf storage .machinable.sqlite
