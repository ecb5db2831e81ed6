# seedbench: `make demo` runs the main job, `make test` the test suite. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean-store help

help:
	@echo "make demo   - create .venv if missing, run the demo grid on the bundled digits and print the report"
	@echo "make test   - create .venv if missing, run the test suite"

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/seedbench sweep experiments/demo.yaml
	$(BIN)/seedbench sweep experiments/demo-rbd.yaml
	$(BIN)/seedbench report --baseline sgd --metric val_acc --where "dataset = 'digits' AND epochs = 10 AND limit_train IS NULL"
	$(BIN)/seedbench plot --kind box --metric test_acc --by method --within model --where "dataset = 'digits' AND epochs = 10 AND limit_train IS NULL" -o demo-test-acc.png

test: $(STAMP)
	$(BIN)/python -m pytest

clean-store:
	rm -rf storage .machinable.sqlite
