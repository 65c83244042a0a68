PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install install-test demo test lint bench clean

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

lint: $(PY)
	$(PY) -m pip install -q -e '.[lint]'
	$(VENV)/bin/ruff check --isolated --select E,F,W,I,B --target-version py39 --line-length 110 opchatgpts tests bench
	$(VENV)/bin/mypy

bench: install-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
