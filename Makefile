# Two entry points (README): `make run` runs the main job offline on the embedded synthetic market,
# `make test` runs the test suite. Both create/refresh .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
# Demo range: the trailing DEMO_DAYS weekdays ending at the newest complete partition.
DEMO_DAYS ?= 520

.PHONY: install install-dev run test dev clean-lake

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"

run: install
	$(BIN)/python -m cnn_pipelines.main --days $(DEMO_DAYS)

test: install-dev
	$(BIN)/python -m pytest -q cnn_pipelines_tests

dev: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean-lake:
	rm -rf data_lake/*/ data_lake/lake.duckdb data_lake/.lake.duckdb.lock
