# guahao — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | cksum | cut -d' ' -f1)
UV     ?= uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet

.PHONY: run test test-fast lint bench venv clean miniprogram console lock check-lock

# Every third-party package comes from the lock, checked against its sha256 (the build
# backend included: the project itself is installed without build isolation).
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

## Re-resolve the locks after changing dependencies in pyproject.toml (needs uv and PyPI:
## `pip install uv`). The dev lock is constrained by the runtime one: same versions.
lock:
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev -c requirements.lock $(LOCK_FLAGS) \
	  -o requirements-dev.lock

## The locks still match pyproject.toml (offline; part of `make test`).
check-lock: venv
	$(PY) deploy/check-lock.py

## Start the whole system locally (embedded store, WeChat fake, services, gateway).
run: venv console
	$(PY) -m shared.devstack

## Everything CI runs: lint, the mini-program's unit tests, then pytest (which also runs
## the mini-program's end-to-end suite against a started system).
test: venv check-lock lint miniprogram console
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

## The mini-program: dependencies, npm build (TDesign into miniprogram_npm), ESLint (with the
## mini-program globals wx, App, Page, Component, getApp, getCurrentPages), jest unit tests.
miniprogram:
	cd miniprogram && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build:npm && npm run --silent lint && npm test --silent

## The staff web console (Vue 3 + TDesign, Vite): console/dist, served by the gateway at
## /console/ (a missing build is a 503 page there, not a crash).
console:
	cd console && npm ci --no-audit --no-fund --loglevel=error && npm run build

## The fast set: no multi-process, fault-injection or load tests.
test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: venv
	$(PY) -m ruff check shared gateway services tests bench
	$(PY) -m ruff format --check shared gateway services tests bench
	$(PY) -m mypy

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .data .pytest_cache miniprogram/node_modules miniprogram/miniprogram_npm \
	  console/node_modules console/dist
