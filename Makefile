# Every target bootstraps what it needs, so `make dev` and `make test` work on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# One Python everywhere: the Lambda runtime's (3.12). Found through pyenv when present, else on PATH.
PYTHON ?= $(shell (command -v pyenv >/dev/null 2>&1 && v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$$' | tail -1) && [ -n "$$v" ] && PYENV_VERSION=$$v pyenv which python3.12) 2>/dev/null || command -v python3.12)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
# sam build resolves `python3.12` on PATH: put the project's venv first so it uses the same interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv dev test test-fast lint format build bench fuzz pr clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/bridge/requirements.txt
	@test -n "$(PYTHON)" || { echo "python3.12 not found (install it with pyenv: pyenv install 3.12)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)  ## create or refresh the virtual environment

dev: $(STAMP)  ## run the whole bridge locally (Function URLs, queues, sandboxes, console)
	$(BIN)/bridge dev $(if $(PORT),--port $(PORT))

test: $(STAMP)  ## run every test suite (unit, integration, contract, browser, fuzz smoke)
	./scripts/ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## unit tests only
	$(BIN)/python -m pytest tests/unit -q

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip 'aws-sam-cli>=1.120'
	@touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip 'checkov>=3.2'
	@touch $@

lint: $(STAMP) $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed  ## ruff, mypy, mapping validation, cfn-lint, sam validate, checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bridge validate mappings/
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=eu-west-1 $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

format: $(STAMP)  ## apply ruff formatting and fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

build: $(STAMP) $(SAM_VENV)/.installed  ## validate the mappings, then sam build (layer with hash-based .pyc)
	$(BIN)/bridge validate mappings/
	$(SAM_VENV)/bin/sam build --template template.yaml

# No sam here: the package figure builds the layers through their Makefile, as sam build does.
bench: $(STAMP)  ## the benchmark: writes bench/results.json and prints a table
	$(BIN)/python -m bench

fuzz: $(STAMP)  ## longer atheris runs of every verifier, parser and the mapping evaluator
	$(BIN)/python -m tests.fuzz --runs $${FUZZ_RUNS:-200000}

pr: lint test build  ## everything CI checks, before a pull request

clean:  ## remove build output and virtual environments
	rm -rf .aws-sam bench/build $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache
