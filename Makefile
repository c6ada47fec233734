# OTV: the usual entry points. Every target that needs the machine set up runs scripts/setup.sh first
# (idempotent, a few seconds when everything is in place).
SHELL := /bin/bash
PYTHON_DIRS := shared services tools tests

# The number of processes of each service that `make run` starts (invariant I7): `make run REPLICAS=2`.
REPLICAS ?= 1

.PHONY: setup run test lint bench clean messages

setup:
	bash scripts/setup.sh

run:
	SETUP_DEMO=1 bash scripts/setup.sh
	@echo
	@echo "OTV is starting (Ctrl-C stops everything):"
	@echo "  gateway (customer and staff pages, API)  http://127.0.0.1:8080"
	@echo "  mail inbox (local mail sink)             http://127.0.0.1:8025"
	@echo "  demo logins: demo-admin, demo-statistics, demo-audit, <location>-manager/-leader/-admin,"
	@echo "               password $${OTV_DEMO_PASSWORD:-otv-demo} (OTV_DEMO_PASSWORD)"
	@echo
	.venv/bin/python scripts/procfile.py $(REPLICAS) -o var/Procfile.run
	PYTHONUNBUFFERED=1 exec .venv/bin/honcho start -f var/Procfile.run

# Lint (ruff, formatting, mypy --strict) and the tests; runs the tests even when lint fails, so that one CI run reports both; fails if either failed.
test:
	SETUP_BROWSER=1 SETUP_PROMTOOL=1 bash scripts/setup.sh
	status=0; \
	.venv/bin/ruff check . || status=1; \
	.venv/bin/ruff format --check . || status=1; \
	.venv/bin/mypy $(PYTHON_DIRS) bench || status=1; \
	.venv/bin/pytest -q || status=1; \
	exit $$status

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy $(PYTHON_DIRS) bench

bench: setup
	@if [ -f bench/run.sh ]; then \
		bash bench/run.sh; \
	else \
		echo "There is no benchmark yet (bench/run.sh)."; \
		exit 1; \
	fi

# The gettext templates of the customer pages (translations/*.pot) extracted afresh from their code and
# templates; the test suite fails while one is stale. Then update and translate the catalogues (*.po).
messages: setup
	.venv/bin/python -m tools.messages

# Removes the virtual environment and caches; leaves the databases and the broker alone.
clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache tests/artifacts var
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
