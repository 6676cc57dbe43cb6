# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
export DATABASE_URL ?= sqlite+aiosqlite:///./helsebro.db

.PHONY: run token test lint typecheck pytest migrate demo openapi bench bench-ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/alembic upgrade head

demo: migrate
	$(BIN)/python -m app.demo

# The demo trusts the development token issuer (tokens from `make token` / app.security.devtoken).
run: demo
	AUTH_DEV_ISSUER=$${AUTH_DEV_ISSUER:-true} BASE_URL=$${BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/python -m app.serve --host $(HOST) --port $(PORT)

# A token for the demo GP (Fjordby legekontor), who has a care relation with the demo patients.
token: $(VENV)/.installed
	@$(BIN)/python -m app.security.devtoken personnel --hpr 9100001 --orgnr 992000007 --category LE --scope "user/*.cruds"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy app tests bench migrations

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint typecheck pytest

openapi: $(VENV)/.installed
	$(BIN)/python -m app.openapi

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.crud

# Needs the Synthea bundles: HELSEBRO_SYNTHEA_DIR, or ../shared/data/synthea beside the repository.
bench-ingest: $(VENV)/.installed-dev
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) helsebro.db helsebro.db-wal helsebro.db-shm
