PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install install-test demo test test-latest lint bench mutation mutation-quick clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e .

install-test: $(PY)
	$(PY) -m pip install -q -e '.[test]'

demo: install
	$(PY) -m opchatgpts demo

test: install-test
	$(PY) -m pytest

# The suite against the newest aiohttp, which users get (make test pins one that aioresponses
# supports); the aioresponses tests are left out here.
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q -e '.[test]'
	.venv-latest/bin/python -m pip install -q --upgrade aiohttp
	.venv-latest/bin/python -m pytest -q --ignore=tests/test_retry.py

lint: $(PY)
	$(PY) -m pip install -q -e '.[lint]'
	$(VENV)/bin/ruff check --isolated --select E,F,W,I,B --target-version py39 --line-length 110 opchatgpts tests bench tools
	$(VENV)/bin/mypy

# Mutation testing of the protocol core (opchatgpts/_protocol/), each module against its fast
# tests (tools/mutation.ini). Not part of make test: the full run (about 1,070 mutants) takes
# about 40 minutes on a 2-core machine, the quick sample (about 10 mutants per module, fixed
# seed) under 10. See README.rst, Mutation testing.
mutation: install-test
	$(PY) -m pip install -q -e '.[test,mutation]'
	$(PY) tools/mutation.py --fail-under 95

mutation-quick: install-test
	$(PY) -m pip install -q -e '.[test,mutation]'
	$(PY) tools/mutation.py --sample 10

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .venv-latest build dist *.egg-info
