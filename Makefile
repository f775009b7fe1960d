# Glabella: two commands. `make run` serves the demo; `make test` checks everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest browser bench clean docs

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("Glabella needs Python 3.11 or newer; this is " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Glabella and its pinned dependencies into $(VENV)…"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py demo --if-empty
	@echo ""
	@echo "Glabella is at http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	@echo "(Demo on a laptop: two-step sign-in is off. In production it is required; see docs/deploy.md.)"
	@GLABELLA_DEBUG=1 GLABELLA_MFA_REQUIRED=0 $(PY) manage.py runserver --noreload $(HOST):$(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/lint_scoping.py glabella

typecheck: $(STAMP)
	$(VENV)/bin/mypy

browser:
	@sh scripts/ensure-chromium

pytest: $(STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

docs: $(STAMP)
	$(PY) -m glabella.clinical.rules_doc > docs/clinical-rules.md

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
