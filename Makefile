# The two commands: `make run` (the product on the embedded default) and `make test` (everything).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint venv migrate seed clean prod-local prod-local-stop prod-local-status

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py sync_whatsapp_templates --demo
	@echo ""
	@echo "ispsupport em http://$(HOST):$(PORT)/  ·  admin: /admin/  ·  simulador: /simulator/"
	$(PY) -m daphne -b $(HOST) -p $(PORT) ispsupport.asgi:application

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The production topology on this machine (README "Running as a fleet"): nginx, gunicorn web
# processes, daphne for /ws/, one Celery worker per queue, beat, Redis per role; var/fleet/.
prod-local: $(STAMP)
	deploy/prod-local.sh start

prod-local-stop:
	deploy/prod-local.sh stop

prod-local-status:
	deploy/prod-local.sh status

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* var/ staticfiles/
