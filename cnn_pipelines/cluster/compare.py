"""The same study on one machine and on a cluster, and whether their lakes agree (issue 30's invariant).

The single machine runs `make run`'s plan (history, a trading range, research months) in-process on a local
lake. The cluster gets the same prices in its lake, then its last ``daemon_days`` weekday partitions go through
the instance's queue one run per partition (as ``dagster job backfill`` submits them), and the research months
as an asset backfill launched through the web UI's GraphQL API, as the UI's "Materialize" dialog does: the
daemon's backfill loop launches a month only once the month its warm start comes from is materialized (the
research assets depend on their own earlier partition), the run coordinator and the Celery launcher hand each
run to whichever worker is free. Used by the cluster test and by ``benchmarks/scale.py --cluster``.
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


_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def launch_asset_backfill(ui_url: str, job: str, partitions: list[str], tags: dict[str, str]) -> str:
    """Launch a backfill of ``job``'s assets over ``partitions`` through the web UI's GraphQL API (what its
    "Materialize" dialog sends); returns the backfill's id. The daemon's backfill loop then launches the runs."""
    import requests

    from cnn_pipelines.definitions import defs

    keys = sorted(defs.resolve_job_def(job).asset_layer.executable_asset_keys, key=lambda k: k.to_user_string())
    params = {"partitionNames": partitions, "assetSelection": [{"path": list(k.path)} for k in keys],
              "tags": [{"key": k, "value": v} for k, v in tags.items()]}
    deadline = time.time() + 180  # a UI just started is still loading the code location
    while True:
        try:
            answer = requests.post(f"{ui_url}/graphql", json={"query": _BACKFILL, "variables": {"params": params}},
                                   timeout=60).json()
            if answer.get("data"):
                break
            if answer.get("errors"):
                raise RuntimeError(f"the UI refused the backfill of {job} {partitions}: {answer['errors']}")
        except (requests.ConnectionError, ValueError):  # not up yet (a timed-out POST may have launched: no retry)
            answer = {}
        if time.time() > deadline:
            raise RuntimeError(f"the web UI at {ui_url} did not answer: {answer}")
        time.sleep(2)
    result = (answer.get("data") or {}).get("launchPartitionBackfill") or {}
    if result.get("__typename") != "LaunchBackfillSuccess":
        raise RuntimeError(f"the UI refused the backfill of {job} {partitions}: {answer}")
    return result["backfillId"]


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, timeout_s: float = 900) -> list[dg.DagsterRun]:
    """The runs of a backfill once the daemon has finished it (oldest first); raises if it does not finish."""
    from dagster._core.execution.backfill import BulkActionStatus

    deadline = time.time() + timeout_s
    while True:
        status = instance.get_backfill(backfill_id).status
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        if status in (BulkActionStatus.FAILED, BulkActionStatus.CANCELED):
            raise RuntimeError(f"backfill {backfill_id} {status.value}: {instance.get_backfill(backfill_id).error}")
        if status not in (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING) \
                and all(r.is_finished for r in runs):
            return sorted(runs, key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp)
        if time.time() > deadline:
            raise TimeoutError(f"backfill {backfill_id}: {status}, runs {[(r.status, r.tags.get('dagster/partition')) for r in runs]}")
        time.sleep(1)


@dataclass
class Comparison:
    periods: list[str]
    local_root: Path
    runs: list[dg.DagsterRun]
    pids: dict[str, set[int]]           # partition -> pids of the processes that ran it
    single_s: float
    cluster_s: float                    # the queued runs only (the seeding of prices is not timed)
    day_runs: int = 0                   # runs[:day_runs] are the weekday partitions', the rest the backfill's
    month_runs: list[tuple] = field(default_factory=list)  # (month, assets, start, end) per backfill run
    differences: list[str] = field(default_factory=list)

    def trained_after_its_source(self) -> bool:
        """Each month's model was trained only after the model it warm-starts from (``retrain_plan``, the chain
        beginning at the first period) had finished."""
        from cnn_pipelines.trading.research.assets import retrain_plan

        model = [(m, start, end) for m, assets, start, end in self.month_runs if "cnn_model" in assets]
        by_month = {m: (start, end) for m, start, end in model}
        if sorted(by_month) != sorted(self.periods) or len(model) != len(self.periods) \
                or any(t is None for span in by_month.values() for t in span):
            return False
        sources = {p: retrain_plan(p, self.periods[0])[1] for p in self.periods}
        return all(by_month[p][0] >= by_month[src][1] for p, src in sources.items() if src in by_month)

    @property
    def identical(self) -> bool:
        return not self.differences and all(r.status == dg.DagsterRunStatus.SUCCESS for r in self.runs)


def single_vs_cluster(cluster_env: dict[str, str], workdir: Path, repo: Path, ui_url: str, end: str = "2021-04-30",
                      days: int = 6, periods: int = 2, daemon_days: int = 6) -> Comparison:
    """Run the study both ways (see the module) and compare the lakes. ``cluster_env``: the cluster's
    environment (instance database, broker, lake); the single machine uses it less those, with its own
    DAGSTER_HOME and a local lake in ``workdir``. ``ui_url``: the cluster's web UI."""
    from cnn_pipelines.cluster import TRAINS
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
        # the months' runs carry research_job's tags: the chain's start, and cnn/trains for the queue's limit
        backfill = launch_asset_backfill(ui_url, "research_job", the_plan.periods, {**chain, **TRAINS})
        month_runs = wait_for_backfill(instance, backfill)
        started = {dg.DagsterEventType.RUN_START}
        runs = [*day_runs, *month_runs]
        pids: dict[str, set[int]] = {}
        for r in runs:
            pids.setdefault(r.tags["dagster/partition"], set()).update(
                e.dagster_event.pid for e in instance.all_logs(r.run_id, of_type=started))
        trained = []
        for r in month_runs:
            record = instance.get_run_record_by_id(r.run_id)
            trained.append((r.tags["dagster/partition"], sorted(k.to_user_string() for k in r.asset_selection or ()),
                            record.start_time, record.end_time))
    out = Comparison(the_plan.periods, workdir / "lake", runs, pids, single_s, time.time() - t0, len(day_runs), trained)
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
