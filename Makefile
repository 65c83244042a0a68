PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install install-test demo test test-latest lint bench clean

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
	$(VENV)/bin/ruff check --isolated --select E,F,W,I,B --target-version py39 --line-length 110 opchatgpts tests bench
	$(VENV)/bin/mypy

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .venv-latest build dist *.egg-info
