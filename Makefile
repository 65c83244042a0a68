PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install install-test demo test test-latest test-all test-g4f lint bench mutation mutation-quick clean

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

# The gpt4free integration, driven through g4f's own entry points (tests/g4f/), in two
# throwaway venvs: g4f 0.1.7.5 (ChatCompletion.create / create_async) and the newest g4f
# (g4f.client.Client / AsyncClient too). Both get the project's wheel, built once.
# g4f 0.1.7.5 needs Python < 3.13 (it stacks @classmethod on @property). Its metadata pulls in
# about 20 packages that `import g4f` never touches (flask, js2py, tiktoken, duckduckgo-search...):
# it is installed without them, plus what its import needs.
# For speed the venvs have no pip of their own (.venv's pip installs into them, pip >= 22.3),
# and nothing is byte-compiled ahead: the tests import a small part of what is installed.
G4F_OLD := .venv-g4f-old
G4F_NEW := .venv-g4f-new
G4F_WHEELS := build/g4f-wheels
PYTHON_G4F_OLD ?= python3.11
G4F_OLD_IMPORT_DEPS := requests aiohttp curl_cffi browser_cookie3 platformdirs PyExecJS pycryptodome pillow numpy
# setup.cfg's [tool:pytest] names pytest-asyncio's and pytest-timeout's options; tests/conftest.py
# sets up Hypothesis profiles.
G4F_TEST_DEPS := pytest pytest-asyncio pytest-timeout hypothesis
G4F_PIP_OLD := $(PY) -m pip --python $(G4F_OLD)/bin/python install -q --no-compile
G4F_PIP_NEW := $(PY) -m pip --python $(G4F_NEW)/bin/python install -q --no-compile

test-g4f: $(PY)
	rm -rf $(G4F_OLD) $(G4F_NEW) $(G4F_WHEELS)
	$(PY) -m pip wheel -q --no-deps -w $(G4F_WHEELS) .
	$(PYTHON_G4F_OLD) -m venv --without-pip $(G4F_OLD)
	$(G4F_PIP_OLD) $(G4F_OLD_IMPORT_DEPS) $(G4F_TEST_DEPS) $(G4F_WHEELS)/*.whl
	$(G4F_PIP_OLD) --no-deps "g4f==0.1.7.5"
	$(G4F_OLD)/bin/pytest -q tests/g4f
	$(PYTHON) -m venv --without-pip $(G4F_NEW)
	$(G4F_PIP_NEW) --upgrade g4f $(G4F_TEST_DEPS) $(G4F_WHEELS)/*.whl
	$(G4F_NEW)/bin/pytest -q tests/g4f

lint: $(PY)
	$(PY) -m pip install -q -e '.[lint]'
	$(VENV)/bin/ruff check --isolated --select E,F,W,I,B --target-version py39 --line-length 110 opchatgpts tests bench tools
	$(VENV)/bin/mypy

# Mutation testing of the protocol core (opchatgpts/_protocol/), each module against its fast
# tests (tools/mutation.ini). Not part of make test: the full run (about 1,940 mutants) took
# 18 minutes on a busy 2-core machine (count on half an hour), the quick sample (10 mutants per
# module, fixed seed) about two. See README.rst, Mutation testing.
mutation: install-test
	$(PY) -m pip install -q -e '.[test,mutation]'
	$(PY) tools/mutation.py --fail-under 95

mutation-quick: install-test
	$(PY) -m pip install -q -e '.[test,mutation]'
	$(PY) tools/mutation.py --sample 10

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .venv-latest .venv-3.* $(G4F_OLD) $(G4F_NEW) build dist *.egg-info
