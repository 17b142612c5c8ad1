# Two entry points (README): `make run` runs the main job offline on the embedded synthetic market,
# `make test` runs the test suite. Both create/refresh .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
# Demo range: the trailing DEMO_DAYS weekdays ending at the newest complete partition.
DEMO_DAYS ?= 520
# Extra arguments of cnn_pipelines.main, e.g. make run ARGS="--audit --no-vision".
ARGS ?=

# Real Fashion-MNIST for the vision graphs, offline: Debian's dataset-fashion-mnist (IDX files). Installed when
# this user can; otherwise the vision graph leaves it out and its models fall back to MNIST digits (and say so).
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist

.PHONY: install install-dev run test test-fast mutation dev clean-lake image-datasets cluster cluster-stop

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

# The dev install is redone only when setup.py changes (a stamp file), so `make test-fast` starts at once.
DEV_STAMP := $(VENV)/.dev-installed
install-dev: $(DEV_STAMP)

$(DEV_STAMP): setup.py | $(BIN)/python
	@$(TF_SWAP)
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m cnn_pipelines.instance
	touch $@

run: install image-datasets
	$(BIN)/python -m cnn_pipelines.main --days $(DEMO_DAYS) $(ARGS)

image-datasets:
	@if [ ! -d $(FASHION_MNIST_DIR) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null 2>&1 \
	      || echo "note: could not install dataset-fashion-mnist; the vision graph falls back to MNIST digits"; \
	  else echo "note: Fashion-MNIST needs 'sudo apt-get install dataset-fashion-mnist'; until then the vision graph uses MNIST digits only"; fi; \
	fi

# The whole suite on two workers (one module per worker at a time, so module fixtures are built once), with line
# and branch coverage of cnn_pipelines/ (the floor is fail_under in setup.cfg) and the 15 slowest tests.
test: $(DEV_STAMP) image-datasets
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15 \
	  --cov=cnn_pipelines --cov-branch --cov-report=term:skip-covered cnn_pipelines_tests

# The pure tests (no Dagster run, no training, no subprocess; marked in cnn_pipelines_tests/conftest.py).
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -m fast -n 2 --durations=5 cnn_pipelines_tests

# Mutation testing of the modules where a silent bug costs money (setup.cfg, [mutmut]); report in docs/.
mutation: $(DEV_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/python cnn_pipelines_tests/mutation_report.py

dev: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# A local cluster on 127.0.0.1 (docs/operations.md): PostgreSQL instance, Redis broker, two Celery workers, the
# daemon and the web UI on port 3000, state under CLUSTER_DIR; `make cluster-stop` stops exactly those.
CLUSTER_DIR ?= $(CURDIR)/.cluster
cluster: install
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && (apt-get install -y -qq postgresql redis-server || (apt-get update -qq && apt-get install -y -qq postgresql redis-server)) >/dev/null; } || \
	  { echo "the cluster needs PostgreSQL and Redis: sudo apt-get install postgresql redis-server"; exit 1; }
	$(BIN)/pip install -q -e ".[cluster]"
	$(BIN)/python -m cnn_pipelines.cluster.servers cluster start $(CLUSTER_DIR)

cluster-stop:
	$(BIN)/python -m cnn_pipelines.cluster.servers cluster stop $(CLUSTER_DIR)

clean-lake:
	rm -rf data_lake/*/ data_lake/lake.duckdb data_lake/.lake.duckdb.lock
