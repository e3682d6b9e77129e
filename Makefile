# One entry point for every chore; CI runs the same targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: install run worker scheduler test lint format bench openapi screenshots demo clean cluster cluster-down cluster-status

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# axe-core (npm) for the browser tests' accessibility checks; without npm they are skipped.
AXE := tests/e2e/node_modules/axe-core/axe.min.js

$(AXE): tests/e2e/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error && touch $(AXE); \
	else echo "npm not found: the accessibility checks will be skipped"; fi

install: $(STAMP) ## Create .venv and install the project with its dev tools.

run: $(STAMP) ## Migrate and serve on http://$(HOST):$(PORT) (SQLite in ./data by default).
	$(VENV)/bin/primetrade serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

worker: $(STAMP) ## Run jobs from BROKER_URL (RabbitMQ or Redis).
	$(VENV)/bin/primetrade worker

scheduler: $(STAMP) ## Fire the periodic jobs (with BROKER_URL; the server does it without).
	$(VENV)/bin/primetrade scheduler

# Test processes: one per core by default (each runs whole files, with its own databases,
# servers and browser). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(os.cpu_count() or 1, 4))')

test: $(STAMP) $(AXE) ## The whole suite (API on SQLite and PostgreSQL, browser), with coverage.
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict.
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench scripts
	$(VENV)/bin/ruff format src tests bench scripts

bench: $(STAMP) ## Load-test on PostgreSQL beside the ceiling app; prints a table.
	$(PY) bench/run.py $(BENCH_ARGS)

openapi: $(STAMP) ## Write openapi.json.
	$(VENV)/bin/primetrade openapi --output openapi.json

screenshots: $(STAMP) $(AXE) ## Take the README's screenshots again (docs/screenshots/).
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/e2e/test_quality.py -k test_screenshots

demo: $(STAMP) ## Seed a demo user with tasks.
	$(VENV)/bin/primetrade demo

cluster: $(STAMP) ## nginx on :8080, 3 instances, PostgreSQL primary + replica, Redis (state in .cluster/).
	$(PY) scripts/cluster.py up

cluster-down: ## Stop exactly what `make cluster` started and delete .cluster/.
	$(PY) scripts/cluster.py down

cluster-status: ## Which parts of the local cluster run.
	$(PY) scripts/cluster.py status

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
