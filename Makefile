# Threshold: `make run` for the offline demo, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export FLASK_APP := wsgi

.PHONY: install run demo-reset test test-e2e lint migrate seed babel-extract babel-update babel-compile clean

# One line per stage; pip stays quiet, so the line says how long it takes (measured on a first run).
$(BIN)/.installed: requirements.txt
	@if test -x $(BIN)/python; then echo "==> venv: $(VENV) exists"; \
	 else echo "==> venv: creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); fi
	@echo "==> install: $$(grep -c '^[A-Za-z]' requirements.txt) packages from requirements.txt and their dependencies (first time: about 45 s; pip is quiet until done)"
	@start=$$(date +%s); \
	 $(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip && \
	 $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt && \
	 echo "==> install: done in $$(( $$(date +%s) - start )) s"
	@touch $@

# The compiled catalogs (.mo, not committed: built from the .po files, see babel-compile below).
CATALOGS := $(wildcard app/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

install: $(BIN)/.installed $(COMPILED)

## Create .venv, install, migrate, seed the demo, start the app (with offline Stripe) on $(PORT).
## Any stop signal (Ctrl-C, SIGTERM) stops the app, the worker and localstripe; the demo exits 0.
run: install
	@PORT=$(PORT) exec $(BIN)/python scripts/demo.py

## Start the demo over: delete its database, uploads, logs and localstripe's store, then `make run`.
DEMO_INSTANCE := $(or $(THRESHOLD_INSTANCE),instance)
demo-reset:
	cd $(DEMO_INSTANCE) 2>/dev/null && rm -rf threshold.db threshold.db.settle.lock uploads localstripe \
		mail.log demo.log app.log worker.log localstripe.log || true
	@$(MAKE) --no-print-directory run

## Create .venv, install and run the whole suite (DATABASE_URL=postgresql://… to run it on PostgreSQL).
test: install
	$(BIN)/python -m pytest -m "not e2e" -n 2

## The browser journey (needs /usr/bin/chromium).
test-e2e: install
	$(BIN)/python -m pytest -m e2e -n 2 tests/e2e

lint: install
	$(BIN)/ruff check app tests

migrate: install
	$(BIN)/flask --app wsgi db upgrade

seed: install
	$(BIN)/flask --app wsgi seed-demo

## Translations (issue 9). After adding or changing strings: `make babel-update`, translate the new
## and fuzzy entries in app/translations/*/LC_MESSAGES/messages.po, then `make babel-compile`
## (tests/test_i18n.py fails until every entry is translated and nothing is fuzzy).
BABEL_KEYWORDS := -k _l -k lazy_gettext -k lazy_ngettext:1,2

babel-extract: $(BIN)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg $(BABEL_KEYWORDS) --add-comments=TRANSLATORS: --add-location=file \
		--project=Threshold --copyright-holder="Threshold contributors" -o app/translations/messages.pot .

babel-update: babel-extract
	$(BIN)/pybabel -q update -i app/translations/messages.pot -d app/translations --ignore-obsolete
	@$(BIN)/pybabel compile --statistics -d app/translations 2>&1 | grep -v '^compiling' || true

babel-compile: $(BIN)/.installed
	$(BIN)/pybabel -q compile -d app/translations

# `make install` (and so run, test, test-e2e) rebuilds a catalog whenever its .po is newer.
app/translations/%/LC_MESSAGES/messages.mo: app/translations/%/LC_MESSAGES/messages.po | $(BIN)/.installed
	$(BIN)/pybabel -q compile -i $< -o $@

clean:
	rm -rf $(VENV) instance/threshold.db
