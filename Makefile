# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Install, migrate, and run daphne plus a Celery worker with beat on the embedded default.
run: install
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# Install what the tests need (Python packages, Chromium) and run the whole suite:
# once on SQLite with the in-memory layers, once on PostgreSQL and Redis.
test: install-test
	bash scripts/test.sh

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy messenger keys relay files courier
