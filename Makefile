# Two commands for a newcomer: `make run` and `make test`. Everything else is here too.
SHELL := /bin/bash
.DEFAULT_GOAL := run

# Django 6 needs Python 3.12+; the version is pinned in .python-version.
PYTHON_VERSION := $(shell cat .python-version)
BASE_PYTHON ?= $(shell command -v python$(PYTHON_VERSION) 2>/dev/null \
	|| ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(PYTHON_VERSION)*/bin/python 2>/dev/null | tail -n 1)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

HOST ?= 127.0.0.1
PORT ?= 8000
SIMULATOR_PORT ?= 8001

.PHONY: install run run-sso worker test lint format messages bench mutation clean

OIDC_PROVIDER := scripts/oidc_provider
NODE_MODULES := $(OIDC_PROVIDER)/node_modules/.package-lock.json

# The demo OpenID provider's packages, exactly as locked (npm registry only).
$(NODE_MODULES): $(OIDC_PROVIDER)/package.json $(OIDC_PROVIDER)/package-lock.json
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --silent

$(STAMP): requirements.txt requirements-dev.txt .python-version
	@test -n "$(BASE_PYTHON)" || { echo "Python $(PYTHON_VERSION) not found: install it (pyenv install $(PYTHON_VERSION)) or set BASE_PYTHON=/path/to/python$(PYTHON_VERSION)"; exit 1; }
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) manage.py compilemessages --ignore=.venv --settings=tests.settings >/dev/null
	touch $(STAMP)

install: $(STAMP) $(NODE_MODULES)

.env:
	$(PY) scripts/write_demo_env.py .env

# The dashboard, the local Alibaba Cloud simulator and one background worker, with
# demo users and data. Ctrl-C stops all three.
run: install .env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	$(PY) scripts/run_demo.py --host $(HOST) --port $(PORT) --simulator-port $(SIMULATOR_PORT)

# The same, with the demo OpenID provider on 127.0.0.1:8002: sign in through its pages
# as alice, bob, carol, dave, erin or mallory (README, "Signing in").
run-sso: install .env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	$(PY) scripts/run_demo.py --host $(HOST) --port $(PORT) --simulator-port $(SIMULATOR_PORT) --sso

# One background worker on its own: for a second terminal, or another machine on the
# same PostgreSQL (DATABASE_URL). Run as many as you like.
worker: install
	$(PY) manage.py run_worker

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run --settings=tests.settings
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: install
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=staticfiles --settings=tests.settings
	$(PY) manage.py makemessages -d djangojs -l zh_Hans --ignore=.venv --ignore=staticfiles --settings=tests.settings
	$(PY) manage.py compilemessages --ignore=.venv --settings=tests.settings

bench: install
	$(PY) bench/run.py

# Mutation testing of the core modules (scripts/mutation.toml), one at a time, niced;
# writes docs/mutation.md. Not in CI. Incremental: a re-run tests only the mutants of
# functions changed since the last run (work copies in var/mutation/) and the last
# survivors. MODULES=path limits the run; FULL=1 tests every mutant again.
mutation: install
	$(PY) -m pip install --quiet -r requirements-mutation.txt
	$(PY) scripts/mutation.py $(if $(FULL),--full) $(MODULES)

clean:
	rm -rf $(VENV) staticfiles
