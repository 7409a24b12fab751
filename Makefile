# The targets the README tells people to type. Each installs what it needs on first use.
#   make run    - the whole relay on this machine (local stack + PagerDuty emulator)
#   make test   - the test suite (unit, integration with moto, e2e over HTTP)
#   make lint   - ruff (lint and format check) and mypy
#   make docs   - the docs site at http://127.0.0.1:8000 (make docs-build: mkdocs build --strict)
#   make sam    - sam validate --lint and sam build (aws-sam-cli in a tool environment of its own)
#   make bench  - the benchmark script (prints figures)

PYTHON ?= python3
VENV   := .venv
TOOLS  := .tools
PY     := $(VENV)/bin/python
SAM    := $(TOOLS)/bin/sam
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0
# `sam build` for python3.13 needs a python3.13 on PATH; use pyenv's when there is one.
PY313_DIR := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin) $(wildcard /root/.pyenv/versions/3.13*/bin))
SAM_PATH  := $(if $(PY313_DIR),$(PY313_DIR):,)$(PATH)
REGION    ?= us-east-1

.PHONY: run test lint docs docs-build sam bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "pdrelay needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,local,docs]'
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip
	$(TOOLS)/bin/python -m pip install -q -r requirements-tools.txt
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/pdrelay dev $(ARGS)

# The whole suite: the end-to-end tests one after another (they print the fault and delivery
# tables), the in-process ones on both cores; then the in-process tests again with the wall clock
# 400 days ahead: a test that pins a calendar date where the code compares with "now" fails there
# long before the date comes. (The two fuzz files hold no dates: they run once.)
PARALLEL := -n 2 --dist loadfile
SHIFTED := tests/unit tests/integration --ignore=tests/unit/formats/test_fuzz.py --ignore=tests/integration/test_fuzz_ingest.py
test: $(VENV)/.installed
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)
	$(PY) -m pytest tests/unit tests/integration -q $(PARALLEL) $(PYTEST_ARGS)
	$(PY) -m pytest $(SHIFTED) -q $(PARALLEL) --shift-clock-days 400 $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check layers functions tests bench scripts
	$(VENV)/bin/ruff format --check layers functions tests bench scripts
	$(VENV)/bin/mypy

docs: $(VENV)/.installed
	$(VENV)/bin/mkdocs serve

docs-build: $(VENV)/.installed
	$(VENV)/bin/mkdocs build --strict --site-dir .site

sam: $(TOOLS)/.installed
	$(SAM) validate --lint --region $(REGION)
	@command -v python3.13 >/dev/null 2>&1 || [ -n "$(PY313_DIR)" ] || \
		{ echo "sam build needs python3.13 on PATH (or run: sam build --use-container)"; exit 1; }
	PATH="$(SAM_PATH)" $(SAM) build --region $(REGION)
	$(PYTHON) scripts/check_layer.py .aws-sam/build/PdrelayLayer/python

bench: $(VENV)/.installed
	$(PY) bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .site .aws-sam .pytest_cache .mypy_cache .ruff_cache .pdrelay
