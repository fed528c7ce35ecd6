# The two commands of the README (both set up what is missing first, idempotently):
#   make results   -- run all notebooks headless on the built-in dataset -> results/
#   make test      -- run the test suite
VENV ?= .venv
PROFILE ?= demo
DATASET ?= si-pyxtal

.PHONY: results test setup lint

setup:
	bash scripts/setup.sh

results: setup
	$(VENV)/bin/eiplab reproduce --profile $(PROFILE) --dataset $(DATASET) --out results

test: setup
	$(VENV)/bin/python -m pytest -q -ra --durations=15

lint: setup
	$(VENV)/bin/ruff check eiplab tests benchmarks scripts
