# devicerisk: `make demo` runs the pipeline on synthetic data, `make test` runs the whole suite.
# Both create .venv and install into it when it is missing or pyproject.toml or a C accelerator changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo serve up down test lint format docs notebooks bench bench-retention bench-score bench-lookup bench-dask clean

$(STAMP): pyproject.toml $(wildcard src/devicerisk/*.c)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/devicerisk demo

# The fraud team's lookup service on 127.0.0.1:8000 over data/ (demo mode: creates a local analyst key).
serve: install
	$(BIN)/devicerisk serve --host 127.0.0.1 --port 8000

# A local Prefect server, the work pool and limit, every deployment of prefect.yaml and a worker (loopback only).
up: install
	$(BIN)/devicerisk up

down: install
	$(BIN)/devicerisk down

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/devicerisk contract docs --check
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: install
	$(BIN)/devicerisk contract docs

# JupyterLab (the optional `notebooks` dependencies) on notebooks/, over the lake in $DEVICERISK_DATA_DIR (default data/).
notebooks: install
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter lab notebooks/

bench: install
	$(BIN)/python bench/ingest_bench.py --accounts 25000 --days 7 --repeats 3

# Builds a 90-day lake of 10M events once under /tmp/devicerisk-retention-bench and reuses it.
bench-retention: install
	$(BIN)/python bench/retention_bench.py --events 10000000 --days 90 --repeats 3

# Scores, levels and reasons of a 30-day lake's 169,132 transactions: one pass against the separate path.
bench-score: install
	$(BIN)/python bench/score_bench.py --accounts 14500 --days 30 --seed 2029 --rows 0 --rounds 5

# Account lookups over 1M scored accounts on a real uvicorn server, against a trivial endpoint in the same run.
bench-lookup: install
	$(BIN)/python bench/lookup_bench.py --accounts 1000000 --rate 500 --seconds 10 --rounds 10 --round-seconds 2 \
		--app devicerisk.api.app:create_app --account-path '/v1/accounts/{ref}' --trivial-path /health --analyst-key

# The Dask runner with 1 and 2 worker processes against the single-process runner, at 1x and 10x the events, on a
# loopback Prefect server; data kept under /tmp/devicerisk-dask-bench.
bench-dask: install
	$(BIN)/python bench/dask_bench.py --accounts 1000 --days 7 --scale 10 --rounds 2

clean:
	rm -rf data/lake data/warehouse.duckdb data/quarantine data/landing .pytest_cache
