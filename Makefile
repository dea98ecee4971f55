# Token Store — two commands: `make run` (the store) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
SITE_URL ?= http://127.0.0.1:$(PORT)
PYTEST_ARGS ?=

export PORT SITE_URL
# A fresh clone runs in development (sandbox) mode unless .env or the environment says otherwise.
export TOKENSTORE_DEV ?= 1

.PHONY: run test bench install install-dev setup lint e2e clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

## setup: migrate, collect static files, seed packages and periodic tasks, demo staff account.
setup: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_packages
	$(BIN)/python manage.py install_schedules
	$(BIN)/python manage.py ensure_demo_staff

## run: the store (web + Celery worker + beat) on $(SITE_URL).
run: setup
	@echo ""
	@echo "  Token Store is starting on $(SITE_URL)   (Ctrl-C stops web, worker and beat)"
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_PORT=$(PORT) $(BIN)/honcho start

## test: ruff and the whole pytest suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

## bench: the benchmarks under tests/bench (PostgreSQL + Redis recommended).
bench: install-dev
	RUN_BENCH=1 $(BIN)/python -m pytest tests/bench -p no:xdist -s -m bench $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) staticfiles .broker .pytest_cache .ruff_cache
