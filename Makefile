# Every target a person runs is the one CI runs. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON_BIN ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
CELERY := $(VENV)/bin/celery -A config

.PHONY: help install migrate demo run serve nginx test lint format bench bench-python bench-steady bench-export bench-purge bench-settlement worker beat browser

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) .env.local ## Create .venv, install the dependencies, write .env.local

# manage.py's settings on this machine: DEBUG on and a random key, written once, git-ignored.
# Only manage.py reads it (the environment wins); gunicorn and Celery never do.
.env.local:
	@umask 077; { echo '# Written by `make install` for manage.py on this machine (git-ignored).'; \
	  echo '# Settings in the environment win. gunicorn and Celery never read this file.'; \
	  echo 'DEBUG=true'; \
	  echo "SECRET_KEY=$$($(PYTHON_BIN) -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	} > $@.tmp && mv $@.tmp $@
	@echo "Wrote $@: DEBUG on and a random SECRET_KEY, for manage.py on this machine"

migrate: install ## Apply database migrations
	$(PY) manage.py migrate --noinput

demo: migrate ## Load the demo vendors, agents and transfer numbers
	$(PY) manage.py seed_demo

run: export DEBUG ?= true
run: demo ## Set up and serve on 127.0.0.1:$(PORT) with a Celery worker and beat beside it
	$(PY) manage.py demo_login
	@# Server, worker and beat side by side: Ctrl-C, or any one of them stopping, stops all three
	@# (so the demo never runs on without its worker). A signal sent to the whole group (Ctrl-C,
	@# a timeout, an IDE's stop button) also reaches a prefork worker's pool, whose warm shutdown
	@# then waits for it for ever: the worker runs its tasks in threads. make passes a SIGTERM on
	@# to this shell, which must not cut its clean-up short; what still runs 8 s later is killed.
	@trap 'trap "" INT TERM; SECONDS=0; kill $$pids 2>/dev/null; until [ $$SECONDS -ge 8 ] || ! ps -p "$${pids// /,}" >/dev/null; do sleep 0.2; done; kill -9 $$pids 2>/dev/null; wait' EXIT; \
	trap 'exit 130' INT TERM; \
	$(CELERY) worker --loglevel INFO --pool threads --concurrency 2 & pids=$$!; \
	$(CELERY) beat --loglevel WARNING & pids="$$pids $$!"; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT) & pids="$$pids $$!"; \
	wait -n

# Production settings from the environment (SECRET_KEY at least; DATABASE_URL, CACHE_URL,
# CELERY_BROKER_URL, WEB_CONCURRENCY...), no demo data: docs/operations.md.
serve: export DJANGO_SETTINGS_MODULE ?= config.settings
serve: nginx migrate ## Production on 127.0.0.1:$(PORT): nginx, gunicorn, a worker and beat (Ctrl-C stops all)
	PORT=$(PORT) exec $(PY) -m config.serve

NGINX ?= /usr/sbin/nginx

nginx: ## Install Debian's nginx for `make serve` and its tests, when it is missing
	@test -x $(NGINX) || command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

test: export DJANGO_SETTINGS_MODULE = config.settings_test
test: demo ## Set up and run the whole test suite
	$(PY) -m pytest

lint: install ## Ruff lint and format check, then mypy (settings in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# --- Analyst exports --------------------------------------------------------------------------
bench-export: install ## Seed 1M call records in PostgreSQL (BENCH_DATABASE_URL), time the exports
	$(PY) bench/export_bench.py

bench-purge: install ## Ping p99 on a schedule while retention purges 1M old call records
	$(PY) bench/purge_bench.py
bench-settlement: install ## Seed 1M settled call records in PostgreSQL, time scorecards and statements
	$(PY) bench/settlement_bench.py

# --- Production readiness -------------------------------------------------------------------
.PHONY: fuzz

fuzz: export DJANGO_SETTINGS_MODULE = config.settings_test
fuzz: demo ## Fuzz the ping longer than `make test` does, with fresh randomness
	FUZZ_RANDOM=1 FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-2000} $(PY) -m pytest -p no:cacheprovider tests/calls/test_fuzz_schema.py

# --- Reservation lifecycle: Celery for production (`make run` starts both itself) ------------
worker: install ## Run a Celery worker alone (production: set CELERY_BROKER_URL=redis://…)
	$(CELERY) worker --loglevel INFO

beat: install ## Run Celery beat alone: exactly one per deployment (it schedules the sweep)
	$(CELERY) beat --loglevel INFO

# --- The browser test (staff admin) ----------------------------------------------------------
CHROMIUM ?= /usr/bin/chromium

browser: ## Install Debian's chromium for the browser test, when it is missing
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# --- Speed ------------------------------------------------------------------------------------
bench: install ## Load test: production gunicorn on PostgreSQL under wrk, pings vs a trivial endpoint
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) bench/run.py

bench-steady: install ## Where the steady-rate phase's slow pings come from: rounds on a schedule, probed
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) bench/steady_tail.py

bench-python: install ## Python instructions per ping vs a trivial request (callgrind; after make bench)
	@command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
	$(PY) bench/python_cost.py
