# Every command has a name; each target brings .venv up to date itself, so a fresh clone needs
# nothing but `make test` (or `make demo`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench chaos schemas clean image-smoke kafka trace-smoke

# Set-up talks on stderr only, so `make bench > bench.json` gets nothing but the JSON.
$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (pip install -e '.[dev]')" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

# Two halves at once (tests/halves.py): noida-db and everything that needs no broker, and every
# Kafka-facing test again on Apache Kafka 4.x (KAFKA_VERSIONS=3.9 or all adds 3.9; it needs Java
# 17+ and Maven, and says in one line when it is skipped). PYTEST_ARGS go to both halves.
test: $(STAMP)
	$(BIN)/python -m tests.halves $(PYTEST_ARGS)

# An Apache Kafka broker by hand (KRaft, PLAINTEXT, SASL, TLS, mTLS listeners; Ctrl-C stops it):
# KAFKA_ARGS="--version 3.9" for 3.9, "--data-dir DIR" to keep its data.
kafka: $(STAMP)
	@$(BIN)/python -m sandbox.apache_kafka $(KAFKA_ARGS)

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

# BROKER=apache runs every variant on Apache Kafka 4.x (200,000 tokens), its JVM killed -9.
BROKER ?= noida
CHAOS_TOKENS ?= $(if $(filter apache,$(BROKER)),200000,1000000)
chaos: $(STAMP)
	$(BIN)/python -m sandbox.chaos --tokens $(CHAOS_TOKENS) --concurrency 8 --broker $(BROKER)

demo: $(STAMP)
	$(BIN)/ocpi-puller demo

# Builds the image and runs it against the embedded broker; never part of `make test`. Needs
# root, Debian's docker.io and mmdebstrap (docs/deployment.md): it says so in one line if not.
image-smoke: $(STAMP)
	$(BIN)/python -m tests.deploy.image_smoke $(SMOKE_ARGS)

# Builds Jaeger v2 from the Go module proxy (pinned in tests/deploy/jaeger/go.mod, cached in
# ~/.cache/ocpi-puller/jaeger), runs a pull with OTLP to it and reads the trace back from its
# query API; never part of `make test`. Needs Go.
trace-smoke: $(STAMP)
	$(BIN)/python -m tests.deploy.trace_smoke $(SMOKE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

schemas: $(STAMP)
	$(BIN)/python -m schemas.export schemas/json
