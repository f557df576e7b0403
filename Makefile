# Two commands on a fresh machine (Python 3.11+): `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	rm -rf demo
	$(BIN)/digest --config examples/config.toml fetch
	$(BIN)/digest --config examples/config.toml sources
	@echo "Stored in demo/digest.db (SQLite)."

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py

clean:
	rm -rf demo $(VENV) .pytest_cache
