# Two commands set everything up: `make run` (serve the sample) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8050
RESULTS ?= sample_results
PYTEST_ARGS ?=

.PHONY: run lint test test-fast bench bench-ui bench-reviewer bench-permute screenshots sample clean help

help:
	@echo "make run    - create/refresh .venv and serve the app on $(RESULTS) at http://$(HOST):$(PORT)"
	@echo "make lint   - ruff check and mypy (configured in pyproject.toml)"
	@echo "make test   - create/refresh .venv with test extras, run lint, then the whole suite"
	@echo "make bench  - benchmark the statistics core; make bench-ui - the app in headless Chromium"
	@echo "make bench-permute - permutation inference (vs nilearn; Celery scaling, needs redis-server)"
	@echo "make screenshots - regenerate docs/img/*.png from the running app"

# The stamp is rebuilt whenever pyproject.toml changes (or the venv is missing).
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/.installed $@

run: $(BIN)/.installed
	$(BIN)/cue-dashboard serve $(RESULTS) --host $(HOST) --port $(PORT)

# Static checks (settings in pyproject.toml: [tool.ruff], [tool.mypy]); `make test` runs them first.
lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest --headless $(PYTEST_ARGS)

test-fast: $(BIN)/.installed-test
	$(BIN)/python -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

bench: $(BIN)/.installed-test
	$(BIN)/python scripts/bench_stats.py

bench-ui: $(BIN)/.installed-test
	$(BIN)/python scripts/bench_ui.py

bench-reviewer: $(BIN)/.installed-test
	$(BIN)/python scripts/bench_reviewer.py

bench-permute: $(BIN)/.installed-test
	$(BIN)/python scripts/bench_permute.py
	$(BIN)/python scripts/bench_permute_celery.py

screenshots: $(BIN)/.installed-test
	$(BIN)/python scripts/screenshots.py

sample: $(BIN)/.installed
	$(BIN)/cue-dashboard make-sample $(RESULTS) --force

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
