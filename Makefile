PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install install-test demo test test-latest test-all lint bench clean

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

# The whole suite on each CPython 3.9-3.13 found (pyenv, or python3.X on PATH), each in its own
# .venv-3.X; a missing interpreter is skipped with a note. PYTHONS="3.9 3.13" picks some.
PYTHONS ?= 3.9 3.10 3.11 3.12 3.13
test-all:
	PYTHONS="$(PYTHONS)" bash tools/test-all.sh

lint: $(PY)
	$(PY) -m pip install -q -e '.[lint]'
	$(VENV)/bin/ruff check --isolated --select E,F,W,I,B --target-version py39 --line-length 110 opchatgpts tests bench
	$(VENV)/bin/mypy

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .venv-latest .venv-3.* build dist *.egg-info
