"""The project's event storage plans a range run's asset once (with the run's partitions as a subset) and keeps
no copy of an asset's latest materialization, yet the UI's answers per partition stay Dagster's own: the same
scenario on Dagster's default SQLite storage (one planned event per partition, the copy kept) gives the same
partition statuses (materialized, failed, in progress), the same latest run per partition and the same latest
materialization."""

import shutil
import sqlite3

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from cnn_pipelines_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")
KEYS = DAYS.get_partition_keys()  # 10 days
SEEN_DURING_RUN: list[dict] = []   # statuses the asset reads while its own run is under way


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(),
          config_schema={"fail": dg.Field(bool, default_value=False)})
def prices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    SEEN_DURING_RUN.append(dict(context.instance.get_status_by_partition(prices.key, KEYS, DAYS)))
    if context.op_execution_context.op_config["fail"]:
        raise RuntimeError("vendor file missing")
    return dg.MaterializeResult(metadata={"rows": len(context.partition_keys), "last": context.partition_keys[-1]})


JOB = dg.Definitions(assets=[prices], jobs=[dg.define_asset_job("prices_job", [prices])]).resolve_job_def("prices_job")


def _run(instance, first: str, last: str | None = None, fail: bool = False) -> str:
    tags = ({"dagster/partition": first} if last is None
            else {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    result = JOB.execute_in_process(instance=instance, tags=tags, raise_on_error=False,
                                    run_config={"ops": {"prices": {"config": {"fail": fail}}}})
    assert result.success != fail
    return result.run_id


def _scenario(instance) -> list:
    """Range runs that succeed and fail, a one-partition repair, and every per-partition answer after each."""
    SEEN_DURING_RUN.clear()
    steps = [("A", KEYS[0], KEYS[4], False), ("B", KEYS[3], KEYS[7], True), ("C", KEYS[4], None, False),
             ("D", KEYS[6], KEYS[9], True), ("E", KEYS[9], None, False)]
    names, answers = {}, []
    for name, first, last, fail in steps:
        names[_run(instance, first, last, fail)] = name
        status = instance.get_status_by_partition(prices.key, KEYS, DAYS)
        latest_run = {k: names.get(getattr(instance.get_latest_planned_materialization_info(prices.key, k),
                                           "run_id", None)) for k in KEYS}
        newest = instance.get_latest_materialization_event(prices.key)
        answers.append((name, status, latest_run, names[newest.run_id],
                        newest.asset_materialization.metadata["last"].value))
    return answers + [("during runs", SEEN_DURING_RUN[:])]


def test_range_runs_are_planned_once_and_answer_per_partition_as_dagster_does(tmp_path):
    home = tmp_path / "project"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ours = _scenario(instance)
    (tmp_path / "default").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "default")) as instance:
        reference = _scenario(instance)

    assert ours == reference
    status = {name: s for name, s, *_ in ours[:-1]}
    failed, done = dg.AssetPartitionStatus.FAILED, dg.AssetPartitionStatus.MATERIALIZED
    assert [status["B"][k] for k in KEYS[:8]] == [done] * 3 + [failed] * 5  # a failed range run marks its days
    assert status["C"][KEYS[4]] == done and status["C"][KEYS[3]] == failed   # a one-partition repair clears one
    assert [status["E"][k] for k in KEYS[6:]] == [failed] * 3 + [done]
    during = ours[-1][1]
    assert {k for k, s in during[1].items() if s == dg.AssetPartitionStatus.IN_PROGRESS} == set(KEYS[3:8])
    assert ours[1][2][KEYS[2]] == "A" and ours[1][2][KEYS[3]] == "B" and ours[2][2][KEYS[4]] == "C"

    with sqlite3.connect(home / "history" / "events" / "event_log.db") as con:
        plans = con.execute("select partition from event_logs where dagster_event_type = "
                            "'ASSET_MATERIALIZATION_PLANNED'").fetchall()
        copies = con.execute("select count(last_materialization) from asset_keys").fetchone()[0]
    assert len(plans) == 5 and copies == 0  # one plan per run, whatever its partitions; no copied materialization


def test_the_cluster_instance_on_postgres_is_lean_and_answers_as_dagster_does(tmp_path, postgres, monkeypatch):
    """Issue 30: deploy/cluster/dagster.yaml puts runs, events and schedules in PostgreSQL with the project's
    lean event storage. The same scenario gives Dagster's own answers (its stock SQLite storage as reference),
    one planned row per run and no copied materialization; and the instance really builds the lean class (a
    subclass that inherited dagster-postgres' from_config_value would silently get the stock one)."""
    import sqlalchemy as sa

    from cnn_pipelines.storage.postgres_events import LeanPostgresEventLogStorage

    home = tmp_path / "cluster"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "cluster" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("CNN_POSTGRES_URL", postgres)
    monkeypatch.setenv("CNN_CELERY_BROKER", "redis://127.0.0.1:9/0")  # the launcher is not used in-process
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage) is LeanPostgresEventLogStorage
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        ours = _scenario(instance)
    (tmp_path / "default").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "default")) as instance:
        reference = _scenario(instance)
    assert ours == reference

    engine = sa.create_engine(postgres)
    try:
        with engine.connect() as con:
            plans = con.execute(sa.text("select count(*) from event_logs where dagster_event_type = "
                                        "'ASSET_MATERIALIZATION_PLANNED'")).scalar()
            copies = con.execute(sa.text("select count(last_materialization) from asset_keys")).scalar()
            runs = con.execute(sa.text("select count(*) from runs")).scalar()
    finally:
        engine.dispose()
    assert (plans, copies, runs) == (5, 0, 5)
