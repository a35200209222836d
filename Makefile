# Every command has a name; each target brings .venv up to date itself, so a fresh clone needs
# nothing but `make test` (or `make demo`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench chaos schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check producer sandbox schemas tests bench
	$(BIN)/ruff format --check producer sandbox schemas tests bench
	$(BIN)/mypy

chaos: $(STAMP)
	$(BIN)/python -m sandbox.chaos --tokens 1000000 --concurrency 8

demo: $(STAMP)
	$(BIN)/ocpi-puller demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

schemas: $(STAMP)
	$(BIN)/python -m schemas.export schemas/json
