# Two entry points (README): `make run` runs the main job offline on the embedded synthetic market,
# `make test` runs the test suite. Both create/refresh .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
# Demo range: the trailing DEMO_DAYS weekdays ending at the newest complete partition.
DEMO_DAYS ?= 520

# Real Fashion-MNIST for the vision graphs, offline: Debian's dataset-fashion-mnist (IDX files). Installed when
# this user can; otherwise the vision graph leaves it out and its models fall back to MNIST digits (and say so).
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist

.PHONY: install install-dev run test dev clean-lake image-datasets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# After installing, the Dagster instance ($$DAGSTER_HOME) is created once, so two first commands at once do not
# both try to create its SQLite tables (see cnn_pipelines/instance.py).
# setup.py installs tensorflow-cpu on machines without an NVIDIA driver; both wheels own the `tensorflow` package,
# so a CUDA wheel left by an older install is removed first rather than overwritten file by file.
TF_SWAP = if [ ! -e /proc/driver/nvidia ] && ! command -v nvidia-smi >/dev/null && $(BIN)/pip show -q tensorflow 2>/dev/null; \
	then $(BIN)/pip uninstall -y -q tensorflow; fi

install: $(BIN)/python
	@$(TF_SWAP)
	$(BIN)/pip install -q -e .
	$(BIN)/python -m cnn_pipelines.instance

install-dev: $(BIN)/python
	@$(TF_SWAP)
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m cnn_pipelines.instance

run: install image-datasets
	$(BIN)/python -m cnn_pipelines.main --days $(DEMO_DAYS)

image-datasets:
	@if [ ! -d $(FASHION_MNIST_DIR) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null 2>&1 \
	      || echo "note: could not install dataset-fashion-mnist; the vision graph falls back to MNIST digits"; \
	  else echo "note: Fashion-MNIST needs 'sudo apt-get install dataset-fashion-mnist'; until then the vision graph uses MNIST digits only"; fi; \
	fi

test: install-dev image-datasets
	$(BIN)/python -m pytest -q cnn_pipelines_tests

dev: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean-lake:
	rm -rf data_lake/*/ data_lake/lake.duckdb data_lake/.lake.duckdb.lock
