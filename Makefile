# Recur: `make run` starts everything with demo data; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One variable per thing moves a second instance: make run WEB_PORT=8100 STRIPE_PORT=8520 DB_NAME=recur2 REDIS_DB=2
DB_NAME ?= recur
WEB_PORT ?= 8000
STRIPE_PORT ?= 8420
REDIS_DB ?= 0
export DB_NAME WEB_PORT STRIPE_PORT REDIS_DB

.PHONY: run test lint format bench bench-api install services db migrate lock clean-db help

help:
	@echo "make run    install, migrate, seed demo data, start web + worker + beat + localstripe"
	@echo "make test   install and run lint and the test suite"
	@echo "make lint / format / lock / clean-db"

# Installs only when the pinned requirements changed since the last install. Bytecode is
# compiled once here: where PYTHONDONTWRITEBYTECODE is set (this machine kind's sessions set
# it), every process would otherwise compile what it imports, 4-7 s of each start (web,
# worker, each test that starts a process).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -r requirements.txt -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

services:
	@scripts/ensure-services.sh

db: services
	@psql -h localhost -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$(DB_NAME)'" | grep -q 1 \
	  || createdb -h localhost -U postgres $(DB_NAME)

migrate: install db
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap

# scripts/run.sh migrates, seeds, starts everything and says "ready" once each process answers.
run: install db
	@scripts/run.sh

# The test database is rebuilt when a migration changed, else reused.
test: install services
	@scripts/ensure-chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@mkdir -p .run
	@sum=$$(cat */migrations/*.py */*/migrations/*.py 2>/dev/null | sha1sum | cut -c1-40); \
	  if [ "$$sum" = "$$(cat .run/migrations.sha 2>/dev/null)" ]; then db=--reuse-db; else db="--reuse-db --create-db"; fi; \
	  $(VENV)/bin/pytest $$db $(PYTEST_ARGS) && echo $$sum > .run/migrations.sha

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks run against their own database so they never touch dev data.
BENCH_DB ?= recur_bench
BENCH_N ?= 100000
BENCH_WORKERS ?= 2
BENCH_LEDGER_ENTRIES ?= 1000000
BENCH_API_DB ?= recur_bench_api
BENCH_API_CUSTOMERS ?= 1000000
BENCH_API_RATE ?= 200
BENCH_API_DURATION ?= 20
BENCH_API_WORKERS ?= 4
BENCH_API_THREADS ?= 1
BENCH_WEBHOOK_EVENTS ?= 10000
BENCH_BENEFIT_N ?= 10000
# A fresh database each run: tables bloated by earlier runs (a million ledger rows written
# and deleted) slowed the renewal benchmark by a third.
bench: install services
	dropdb -h localhost -U postgres --if-exists $(BENCH_DB)
	createdb -h localhost -U postgres $(BENCH_DB)
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_DB) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_DB) $(PY) manage.py bench_renewals --n $(BENCH_N) --workers $(BENCH_WORKERS)
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_DB) $(PY) manage.py bench_ledger_balance --entries $(BENCH_LEDGER_ENTRIES)
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_DB) $(PY) manage.py bench_webhooks --events $(BENCH_WEBHOOK_EVENTS) --workers $(BENCH_WORKERS)
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_DB) $(PY) manage.py bench_downloads --mb 20 --downloads 200 --files 10
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_DB) $(PY) manage.py bench_benefit_events --n $(BENCH_BENEFIT_N)
	$(MAKE) --no-print-directory bench-api

# The API under load (gunicorn, open-loop generator) on a database of its own.
bench-api: install services
	dropdb -h localhost -U postgres --if-exists $(BENCH_API_DB)
	createdb -h localhost -U postgres $(BENCH_API_DB)
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_API_DB) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=postgres://postgres@localhost:5432/$(BENCH_API_DB) $(PY) manage.py bench_api \
	  --customers $(BENCH_API_CUSTOMERS) --rate $(BENCH_API_RATE) --duration $(BENCH_API_DURATION) \
	  --workers $(BENCH_API_WORKERS) --threads $(BENCH_API_THREADS)

lock: install
	$(VENV)/bin/uv pip compile -q requirements.in -o requirements.txt --python-version 3.11
	$(VENV)/bin/uv pip compile -q requirements-dev.in -o requirements-dev.txt --python-version 3.11

clean-db: services
	dropdb -h localhost -U postgres --if-exists $(DB_NAME)
