"""Shared fixtures: a temporary lake, a tiny synthetic market, and helpers to run range materializations."""

from __future__ import annotations

import os

# Tests build partitions from 2012 on (small fixed markets), not only the demo's recent history; set before
# cnn_pipelines is imported (the partitions are defined at import). Subprocesses inherit it.
os.environ.setdefault("CNN_PARTITIONS_START", "2012-01-02")
from pathlib import Path

import dagster as dg
import pytest

from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

REPO_ROOT = Path(__file__).resolve().parents[1]
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # CPU-only tests: skip the CUDA probe on machines without a GPU


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def tiny_source() -> SyntheticPriceSource:
    return SyntheticPriceSource(n_tickers=8, seed=3)


def run_range(assets: list, start: str, end: str, resources: dict, instance: dg.DagsterInstance | None = None,
              selection: str | None = None, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` for the partition range [start, end] as one in-process run."""
    job = dg.define_asset_job("test_job", selection=selection or dg.AssetSelection.all())
    defs = dg.Definitions(assets=assets, jobs=[job], resources=resources)
    return defs.resolve_job_def("test_job").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
        run_config=run_config,
    )


def lake_resources(root: Path, source) -> dict:
    return {"lake": ParquetLakeIOManager(root=str(root)), "prices": source}
