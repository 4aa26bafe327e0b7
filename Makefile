# Threshold: `make run` for the offline demo, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export FLASK_APP := wsgi

.PHONY: install run test test-e2e lint migrate seed babel-extract babel-update babel-compile clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

## Create .venv, install, migrate, seed the demo, start the app (with offline Stripe) on $(PORT).
run: install
	PORT=$(PORT) $(BIN)/python scripts/demo.py

## Create .venv, install and run the whole suite (DATABASE_URL=postgresql://… to run it on PostgreSQL).
test: install
	$(BIN)/python -m pytest -m "not e2e" -n 2

## The browser journey (needs /usr/bin/chromium).
test-e2e: install
	$(BIN)/python -m pytest -m e2e tests/e2e

lint: install
	$(BIN)/ruff check app tests

migrate: install
	$(BIN)/flask db upgrade

seed: install
	$(BIN)/flask seed-demo

babel-extract: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o app/translations/messages.pot .

babel-update: babel-extract
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations

babel-compile: install
	$(BIN)/pybabel compile -d app/translations

clean:
	rm -rf $(VENV) instance/threshold.db
