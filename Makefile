# guahao — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-fast lint bench venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

## Start the whole system locally (embedded store, WeChat fake, services, gateway).
run: venv
	$(PY) -m shared.devstack

## Everything CI runs.
test: venv lint
	$(PY) -m pytest -q -p no:cacheprovider

## The fast set: no multi-process, fault-injection or load tests.
test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: venv
	$(PY) -m ruff check shared gateway services tests bench
	$(PY) -m mypy

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .data .pytest_cache
