# Two commands on a fresh machine (Python 3.11+): `make demo` and `make test`.
PYTHON ?= python3
# make bench also measures on PostgreSQL (its tables in this database are dropped first)
BENCH_PG ?= postgresql+psycopg://127.0.0.1:5432/test
VENV   := .venv
BIN    := $(VENV)/bin
# make test runs the suite in this many processes (pytest-xdist); 0 runs it in this one
TEST_WORKERS ?= 2

.PHONY: demo test lint bench clean

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
	$(BIN)/digest --config examples/config.toml preview weekly --since 2017-10-25 --until 2017-11-01 --out demo/edition.html
	$(BIN)/digest --config examples/config.toml preview weekly --since 2017-10-25 --until 2017-11-01 --format text --out demo/edition.txt 2>/dev/null
	$(BIN)/digest --config examples/config.toml preview weekly --since 2017-10-25 --until 2017-11-01 --format json --out demo/edition.json 2>/dev/null
	$(BIN)/digest --config examples/config.toml send weekly --since 2017-10-25 --until 2017-11-01 --yes 2>&1 | grep -v "insecure dev mode"
	$(BIN)/digest --config examples/config.toml editions
	@echo "Stored in demo/digest.db (SQLite); the edition of 25-31 October 2017 is in demo/edition.html, .txt"
	@echo "and .json; the messages sent to examples/subscribers/weekly.csv are in demo/outbox/weekly-1/*.eml."
	@echo ""
	@echo "Next:"
	@echo "  1. Open the editor on this demo (then http://127.0.0.1:8000/editor/, password demo-editor):"
	@echo "       DIGEST_EDITOR_PASSWORD=demo-editor $(BIN)/digest --config examples/config.toml serve"
	@echo "  2. Set up your own blog (writes config.toml and subscribers/weekly.csv here):"
	@echo "       $(BIN)/digest init https://yourblog.blogspot.com"
	@echo "  3. Before real readers get it, go live with docs/going-live.md and check with:"
	@echo "       $(BIN)/digest doctor"

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25

lint: $(VENV)/.installed
	$(BIN)/ruff check digest tests bench
	$(BIN)/mypy digest

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/edition.py
	$(BIN)/python bench/deliver.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/sync.py --db $(BENCH_PG)
	$(BIN)/python bench/deliver.py --smtp 0 --sizes 100000 1000000 --db $(BENCH_PG)
	$(BIN)/python bench/editorial.py

clean:
	rm -rf demo $(VENV) .pytest_cache .mypy_cache .ruff_cache build
