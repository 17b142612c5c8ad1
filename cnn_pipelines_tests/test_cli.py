"""The README's CLI: one partition and a year's range each materialize as ONE run; re-runs are identical."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
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
    first_day = lake.read_partitions(root, "raw_prices", ["2021-06-15"])

    materialize(cli_env, "--partition-range", "2021-01-01...2021-12-31")
    all_runs = runs(cli_env)
    assert len(all_runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in all_runs)
    keys = lake.materialized_keys(root, "raw_prices")
    assert len(keys) == 261 and keys[0] == "2021-01-01" and keys[-1] == "2021-12-31"
    # same day, computed inside a year's range
    pd.testing.assert_frame_equal(lake.read_partitions(root, "raw_prices", ["2021-06-15"]), first_day)

    materialize(cli_env, "--partition", "2021-06-15")
    # re-running a partition leaves identical data
    pd.testing.assert_frame_equal(lake.read_partitions(root, "raw_prices", ["2021-06-15"]), first_day)
    assert not list(root.rglob(".tmp-*"))

    duck = Path(sys.executable).with_name("duckdb")
    out = subprocess.run([str(duck), str(root / "lake.duckdb"), "-csv", "-noheader", "-c",
                          "select count(distinct date), min(date), max(date) from raw_prices"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    n, first, last = out.stdout.strip().split(",")
    assert (first, last) == ("2021-01-04", "2021-12-31") and int(n) == 260  # 261 weekdays less Jan 1 (Jul 4 and Dec 25 fell on weekends)


def test_launched_runs_belong_to_the_code_location(cli_env):
    """`python -m cnn_pipelines.launch` (what `make run` uses) records runs of the workspace's code location,
    so the UI lists them under their job and re-executes them without a version warning."""
    cmd = [sys.executable, "-m", "cnn_pipelines.launch", "price_history_job", "--partition-range",
           "2021-06-14...2021-06-18"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs(cli_env)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "price_history_job"
    origin = run.remote_job_origin
    assert origin is not None and origin.location_name == "cnn_pipelines"  # the name workspace.yaml gives
    assert run.tags["dagster/asset_partition_range_start"] == "2021-06-14"
    assert lake.materialized_keys(Path(cli_env["CNN_LAKE_ROOT"]), "raw_prices") == [
        "2021-06-14", "2021-06-15", "2021-06-16", "2021-06-17", "2021-06-18"]
    with dg.DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        by_job = instance.get_runs(dg.RunsFilter(job_name="price_history_job",
                                                 tags={".dagster/repository": "__repository__@cnn_pipelines"}))
    assert [r.run_id for r in by_job] == [run.run_id]
