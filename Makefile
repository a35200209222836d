# Every command has a name; each target brings .venv up to date itself, so a fresh clone needs
# nothing but `make test` (or `make demo`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench chaos schemas clean image-smoke

# Set-up talks on stderr only, so `make bench > bench.json` gets nothing but the JSON.
$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (pip install -e '.[dev]')" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check producer sandbox schemas tests bench
	$(BIN)/ruff format --check producer sandbox schemas tests bench
	$(BIN)/mypy

# Benchmarks need the pinned peers (dlt) of the `bench` extra; never part of `make test`.
# The default run takes ~8 min here. BENCH_ARGS=--with-10m adds the 10M-object memory run
# (minutes); BENCH_ARGS="--repeat 3" reports every figure a target names as the median of 3
# rounds with min and max (~22 min on a busy machine); BENCH_ARGS="--sections adaptive,churn"
# runs some sections only (bench/bench.py --help).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	@$(BIN)/python -m pip install --quiet -e '.[dev,bench]' >&2
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@$(BIN)/python bench/bench.py $(BENCH_ARGS)

chaos: $(STAMP)
	$(BIN)/python -m sandbox.chaos --tokens 1000000 --concurrency 8

demo: $(STAMP)
	$(BIN)/ocpi-puller demo

# Builds the image and runs it against the embedded broker; never part of `make test`. Needs
# root, Debian's docker.io and mmdebstrap (docs/deployment.md): it says so in one line if not.
image-smoke: $(STAMP)
	$(BIN)/python -m tests.deploy.image_smoke $(SMOKE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

schemas: $(STAMP)
	$(BIN)/python -m schemas.export schemas/json
