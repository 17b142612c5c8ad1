"""The same study on one machine and on a cluster, and whether their lakes agree (issue 30's invariant).

The single machine runs `make run`'s plan (history, a trading range, research months) in-process on a local
lake. The cluster gets the same prices in its lake, then its last ``daemon_days`` weekday partitions and the
research months go through the instance's queue (the daemon's run coordinator, the Celery launcher, whichever
worker is free), one run per partition, the months in order (a month's warm-start source is a function of the
month: the one before it in its chain). Used by the cluster test and by ``benchmarks/scale.py --cluster``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from cnn_pipelines.storage import lake

# What the lakes must agree on: date tables, research tables; and each month's model (ensemble, start).
TABLES = {"raw_prices": "date", "universe": "date", "indicator_panel": "date", "forward_returns": "date",
          "feature_selection": "period", "cnn_images": "period", "oos_predictions": "period"}
CLUSTER_ONLY = ("CNN_POSTGRES_URL", "CNN_CELERY_BROKER")
# The study's market: synthetic, 14 names (ar_cnn needs at least 50 monthly samples before a cutoff).
STUDY_ENV = {"CNN_PRICE_SOURCE": "synthetic", "CNN_SYNTHETIC_TICKERS": "14"}

_DRIVER = """
import json, sys
import dagster as dg
from cnn_pipelines.main import run_job
with dg.DagsterInstance.get() as instance:
    for name, lo, hi, tags in json.loads(sys.argv[1]):
        run = run_job(name, lo, hi, instance, tags=tags or None)
        if run.status != dg.DagsterRunStatus.SUCCESS:
            sys.exit(f"{name} {lo}..{hi}: run {run.run_id} failed")
"""


def run_in_process(runs: list[tuple], env: dict[str, str], cwd: Path, timeout_s: float = 1800) -> float:
    """Run (job, first, last, tags) one after another in a fresh interpreter with ``env``, as `make run` does;
    returns the seconds taken. A failed run raises with the process's last output."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(runs)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"in-process runs failed:\n{proc.stderr[-3000:]}")
    return time.time() - t0


def wait_for(instance: dg.DagsterInstance, run_ids: list[str], timeout_s: float = 300) -> list[dg.DagsterRun]:
    deadline = time.time() + timeout_s
    while True:
        runs = [instance.get_run_by_id(r) for r in run_ids]
        if all(r.is_finished for r in runs):
            return runs
        if time.time() > deadline:
            raise TimeoutError([(r.status, r.tags.get("dagster/partition")) for r in runs])
        time.sleep(1)


def submit(instance: dg.DagsterInstance, job: str, key: str, tags: dict[str, str]) -> str:
    """Queue one run of ``job`` for partition ``key`` (what a backfill does per partition)."""
    from cnn_pipelines.launch import create_run

    run = create_run(instance, job, {"dagster/partition": key, **tags})
    instance.submit_run(run.run_id, workspace=None)
    return run.run_id


@dataclass
class Comparison:
    periods: list[str]
    local_root: Path
    runs: list[dg.DagsterRun]
    pids: dict[str, set[int]]           # partition -> pids of the processes that ran it
    single_s: float
    cluster_s: float                    # the queued runs only (the seeding of prices is not timed)
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences and all(r.status == dg.DagsterRunStatus.SUCCESS for r in self.runs)


def single_vs_cluster(cluster_env: dict[str, str], workdir: Path, repo: Path, end: str = "2021-04-30",
                      days: int = 6, periods: int = 2, daemon_days: int = 6) -> Comparison:
    """Run the study both ways (see the module) and compare the lakes. ``cluster_env``: the cluster's
    environment (instance database, broker, lake); the single machine uses it less those, with its own
    DAGSTER_HOME and a local lake in ``workdir``."""
    from cnn_pipelines.main import plan
    from cnn_pipelines.trading.research.assets import CHAIN_START_TAG

    the_plan = plan(end=end, days=days, periods=periods)
    keys = pd.bdate_range(the_plan.start, the_plan.end).strftime("%Y-%m-%d").tolist()
    cut, chain = keys[-daemon_days:], {CHAIN_START_TAG: the_plan.periods[0]}
    history = [("price_history_job", *r, {}) for r in (the_plan.history, the_plan.lookahead)]
    research = [("research_job", p, p, chain) for p in the_plan.periods]
    single = {k: v for k, v in cluster_env.items() if k not in CLUSTER_ONLY}
    single.update({"DAGSTER_HOME": str(workdir / "home"), "CNN_LAKE_ROOT": str(workdir / "lake")})
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    single_s = run_in_process([*history, ("trading_job", the_plan.start, the_plan.end, {}), *research], single, repo)
    # the cluster: prices everywhere first (labels near the cut need the days after it), features up to the cut
    run_in_process([*history, ("price_history_job", cut[0], cut[-1], {}),
                    ("trading_job", the_plan.start, keys[-daemon_days - 1], {})], cluster_env, repo)
    t0 = time.time()
    with dg.DagsterInstance.get() as instance:
        day_runs = wait_for(instance, [submit(instance, "trading_job", k, {}) for k in cut])
        month_runs = [wait_for(instance, [submit(instance, "research_job", p, chain)], 600)[0]
                      for p in the_plan.periods]
        started = {dg.DagsterEventType.RUN_START}
        runs = [*day_runs, *month_runs]
        pids = {r.tags["dagster/partition"]: {e.dagster_event.pid for e in instance.all_logs(r.run_id, of_type=started)}
                for r in runs}
    out = Comparison(the_plan.periods, workdir / "lake", runs, pids, single_s, time.time() - t0)
    out.differences = lake_differences(lake.as_root(cluster_env["CNN_LAKE_ROOT"]), workdir / "lake", the_plan.periods)
    return out


def lake_differences(cluster_root, local_root, periods: list[str], tol: float = 1e-6) -> list[str]:
    """Where the cluster's lake disagrees with the local one (beyond ``tol``), one line per table or model;
    empty when they agree on every partition the local lake holds."""
    found = []
    for table, column in TABLES.items():
        held = lake.materialized_keys(local_root, table, column)
        if not held:
            found.append(f"{table}: nothing in the single machine's lake")
            continue
        missing = sorted(set(held) - set(lake.materialized_keys(cluster_root, table, column)))
        if missing:
            found.append(f"{table}: the cluster lacks {missing[:5]}")
            continue
        try:
            pd.testing.assert_frame_equal(lake.read_partitions(cluster_root, table, held, column),
                                          lake.read_partitions(local_root, table, held, column), rtol=tol, atol=tol)
        except AssertionError as err:
            found.append(f"{table}: {str(err).splitlines()[0]}")
    for p in periods:
        a, b = (lake.read_json(lake.partition_path(r, "cnn_model", p, "period", "data.json"))
                for r in (cluster_root, local_root))
        if (a["ensemble"], a["started_from"]) != (b["ensemble"], b["started_from"]):
            found.append(f"cnn_model {p}: ensemble {a['ensemble']} vs {b['ensemble']}, "
                         f"started {a['started_from']!r} vs {b['started_from']!r}")
    return found
