# Loyalist: `make run` starts a demo, `make test` runs every check CI runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CUSTOMERS ?= 2000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/loyalist
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: install services run test lint format smoke-embedded browser bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Start PostgreSQL and Redis on loopback when they are not already up.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "PostgreSQL or Redis did not start" >&2; exit 1

# Headless Chromium for the browser tests (Debian's package; Playwright drives it).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty --customers $(DEMO_CUSTOMERS)
	$(PY) manage.py rebuild_segments --rfm --verbosity 0
	@echo ""
	@echo "Loyalist is starting on http://$(HOST):$(PORT)/"
	@echo "  admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  till page: http://$(HOST):$(PORT)/desk/"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/docs/"
	@echo "Demo logins (user / password):"
	@echo "  admin / loyalist-admin          everything"
	@echo "  marketer / loyalist-marketer    segments, personas and campaigns in the admin"
	@echo "  clerk-<store> / loyalist-clerk  the till page of one store"
	@echo "Stop with Ctrl-C."
	@if [ -n "$$REDIS_URL" ]; then \
		HOST=$(HOST) PORT=$(PORT) exec $(VENV)/bin/honcho -f config/Procfile start; \
	else \
		echo "(embedded mode: no REDIS_URL, tasks run in the web process after commit)"; \
		HOST=$(HOST) PORT=$(PORT) exec $(VENV)/bin/honcho -f config/Procfile.embedded start; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The embedded default (SQLite, in-process tasks): migrate, seed, check, then the
# whole suite on SQLite (the browser tests run once, on PostgreSQL).
smoke-embedded: install
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	export DATABASE_URL=sqlite:///$$tmp/db.sqlite3; unset REDIS_URL; \
	$(PY) manage.py migrate --noinput -v0; \
	$(PY) manage.py seed_demo --customers 300 --seed 7 >/dev/null; \
	$(PY) manage.py check; \
	$(VENV)/bin/pytest -q -p no:cacheprovider -m "not browser" --ds=config.settings -o addopts="" tests

test: install services lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) smoke-embedded

# Benchmarks write data: point DATABASE_URL at an empty PostgreSQL database.
bench: install
	$(PY) manage.py bench desk --customers $${BENCH_CUSTOMERS:-100000}

clean:
	rm -rf $(VENV) var db.sqlite3
