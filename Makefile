# guahao — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-fast lint bench venv clean miniprogram

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

## Start the whole system locally (embedded store, WeChat fake, services, gateway).
run: venv
	$(PY) -m shared.devstack

## Everything CI runs: lint, the mini-program's unit tests, then pytest (which also runs
## the mini-program's end-to-end suite against a started system).
test: venv lint miniprogram
	$(PY) -m pytest -q -p no:cacheprovider

## The mini-program: dependencies, npm build (TDesign into miniprogram_npm), ESLint (with the
## mini-program globals wx, App, Page, Component, getApp, getCurrentPages), jest unit tests.
miniprogram:
	cd miniprogram && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build:npm && npm run --silent lint && npm test --silent

## The fast set: no multi-process, fault-injection or load tests.
test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: venv
	$(PY) -m ruff check shared gateway services tests bench
	$(PY) -m mypy

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .data .pytest_cache miniprogram/node_modules miniprogram/miniprogram_npm
