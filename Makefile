# Puente: `make demo` runs the embedded demo; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000

.PHONY: demo test install locales bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Puente needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/puente demo --port $(PORT)

test: install
	$(PY) -m pytest

locales: install
	$(PY) locales/sync.py

bench: install
	$(PY) bench/understanding.py
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) instance *.egg-info
