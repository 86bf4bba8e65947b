# broker-tokens: every developer and CI task starts here.
# `make run` and `make test` work on a fresh machine: they build the virtualenvs they need.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
# sam-cli pins its own dependency ranges, so it lives in a virtualenv of its own.
SAM_VENV := .venv-sam
SAM      := $(SAM_VENV)/bin/sam
STAMP    := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install browser run test lint typecheck unit functional infra e2e browser-tests template-check build deploy bench clean

help:  ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli>=1.120'
	touch $@

install: $(STAMP)  ## create .venv and install the package with its dev tools

browser:  ## install Debian's chromium and chromium-driver for the browser tests (root or sudo; CI does this)
	bash .ci/install-browser

run: $(STAMP)  ## run the refresher on the embedded stack (moto + broker simulators); KEEP=1 keeps it up, LOGOUT=1 adds the end-of-day logout
	$(BIN)/python -m infra.local run $(if $(KEEP),--keep) $(if $(LOGOUT),--logout)

test: lint typecheck template-check  ## everything CI checks: lint, types, template checks, all tests (on every core, at most 4)
	$(BIN)/pytest -q -n auto --maxprocesses 4 --dist loadgroup

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check functions infra tests bench
	$(BIN)/ruff format --check functions infra tests bench

typecheck: $(STAMP)  ## mypy
	$(BIN)/mypy

template-check: $(STAMP) $(SAM_STAMP)  ## cfn-lint and sam validate --lint, offline
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=ap-south-1 $(SAM) validate --lint --template-file template.yaml

unit: $(STAMP)  ## unit tests only
	$(BIN)/pytest -q tests/unit

functional: $(STAMP)  ## functional tests only (moto + simulators on loopback)
	$(BIN)/pytest -q tests/functional

infra: $(STAMP)  ## template tests only
	$(BIN)/pytest -q tests/infra

e2e: $(STAMP)  ## end-to-end tests only
	$(BIN)/pytest -q tests/e2e

browser-tests: $(STAMP)  ## the browser tests only (headless Chromium; `make browser` installs it)
	$(BIN)/pytest -q tests/browser

build: $(STAMP) $(SAM_STAMP)  ## build the Lambda artifacts
	$(BIN)/python -m infra.build

deploy: build  ## deploy to AWS (first time: make deploy GUIDED=1)
	$(SAM) deploy $(if $(GUIDED),--guided)

bench: $(STAMP)  ## benchmarks on the embedded stack, one table
	$(BIN)/python -m bench

clean:  ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
