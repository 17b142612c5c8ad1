"""The README's CLI: one partition and a year's range each materialize as ONE run; re-runs are identical."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from cnn_pipelines.storage import lake

from cnn_pipelines_tests.conftest import REPO_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(home), CNN_LAKE_ROOT=str(tmp_path / "lake"),
               CNN_SYNTHETIC_TICKERS="10", CNN_PRICE_SOURCE="synthetic")
    return env


def materialize(env: dict[str, str], *partition_args: str) -> None:
    cmd = [DAGSTER, "asset", "materialize", "-m", "cnn_pipelines", "--select", "raw_prices", *partition_args]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def runs(env: dict[str, str]) -> list:
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        return instance.get_runs()


def test_one_partition_and_a_year_range_are_one_run_each_and_idempotent(cli_env):
    root = Path(cli_env["CNN_LAKE_ROOT"])
    materialize(cli_env, "--partition", "2021-06-15")
    assert len(runs(cli_env)) == 1
    one = lake.partition_path(root, "raw_prices", "2021-06-15")
    first_bytes = pq.read_table(one)

    materialize(cli_env, "--partition-range", "2021-01-01...2021-12-31")
    all_runs = runs(cli_env)
    assert len(all_runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in all_runs)
    keys = lake.materialized_keys(root, "raw_prices")
    assert len(keys) == 261 and keys[0] == "2021-01-01" and keys[-1] == "2021-12-31"
    assert pq.read_table(one).equals(first_bytes)  # same day, computed inside a year's range

    materialize(cli_env, "--partition", "2021-06-15")
    assert pq.read_table(one).equals(first_bytes)  # re-running a partition leaves identical data
    assert not list(root.rglob(".tmp-*"))

    duck = Path(sys.executable).with_name("duckdb")
    out = subprocess.run([str(duck), str(root / "lake.duckdb"), "-csv", "-noheader", "-c",
                          "select count(distinct date), min(date), max(date) from raw_prices"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    n, first, last = out.stdout.strip().split(",")
    assert (first, last) == ("2021-01-04", "2021-12-31") and int(n) == 260  # 261 weekdays less Jan 1 (Jul 4 and Dec 25 fell on weekends)
