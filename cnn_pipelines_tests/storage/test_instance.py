"""The local Dagster instance: created before first use even when two commands start at once, and runs whose
process died without a word are marked failed instead of staying STARTED forever."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus

from cnn_pipelines.instance import fail_dead_runs, prepare, run_pid
from cnn_pipelines.storage.events import LeanSqliteEventLogStorage
from cnn_pipelines_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

SLOW_RUN = textwrap.dedent("""
    import sys, time
    import dagster as dg

    @dg.op
    def wait():
        time.sleep(120)

    @dg.job
    def slow():
        wait()

    slow.execute_in_process(instance=dg.DagsterInstance.from_config(sys.argv[1]))
""")


def test_two_first_commands_at_once_find_one_instance(tmp_path):
    code = "import sys; from cnn_pipelines.instance import prepare; prepare(sys.argv[1]).get_runs()"
    for attempt in range(3):
        home = tmp_path / f"home{attempt}"
        if attempt == 2:  # the project's instance config (one event database)
            home.mkdir()
            shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
        procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], stderr=subprocess.PIPE) for _ in range(2)]
        errors = [p.communicate(timeout=90)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        assert (home / "history" / "runs.db").exists()
        assert (home / "history" / "events" / "event_log.db").exists() == (attempt == 2)


def test_a_run_whose_process_was_killed_is_marked_failed(tmp_path):
    instance = prepare(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(tmp_path)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            runs = instance.get_runs()
            if runs and runs[0].status == DagsterRunStatus.STARTED and run_pid(instance, runs[0].run_id):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the run never started")
        run_id = runs[0].run_id
        assert run_pid(instance, run_id) == proc.pid
        assert fail_dead_runs(instance) == []          # alive: left alone
        os.kill(proc.pid, signal.SIGKILL)              # dies without a word: no event says so
        proc.wait(timeout=30)
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
        assert fail_dead_runs(instance) == [run_id]
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
        assert f"pid {proc.pid}" in failure.message or f"pid {proc.pid}" in str(failure.dagster_event.message)
        assert fail_dead_runs(instance) == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_history_of_the_default_storage_is_carried_into_the_projects(tmp_path, monkeypatch):
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition("2024-01-01"))
    def daily(context) -> None:
        context.log.info(f"day {context.partition_key}")

    with dg.DagsterInstance.from_config(str(tmp_path)) as old:  # no dagster.yaml yet: Dagster's sharded SQLite
        run_id = dg.materialize([daily], instance=old, partition_key="2024-01-02").run_id
        before = [e.dagster_event_type for e in old.all_logs(run_id)]
    assert (tmp_path / "history" / "runs" / f"{run_id}.db").exists()
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    stored = LeanSqliteEventLogStorage.store_event

    def store_some(self, event):  # the migration is interrupted after a few events
        if self.get_maximum_record_id() and self.get_maximum_record_id() >= 3:
            raise KeyboardInterrupt("interrupted")
        stored(self, event)

    monkeypatch.setattr(LeanSqliteEventLogStorage, "store_event", store_some)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path)
    assert (tmp_path / "history" / "runs" / f"{run_id}.db").exists()   # the old history is untouched
    monkeypatch.setattr(LeanSqliteEventLogStorage, "store_event", stored)
    with prepare(tmp_path) as instance:                                  # and the next start carries it over
        assert [e.dagster_event_type for e in instance.all_logs(run_id)] == before
        assert instance.get_materialized_partitions(dg.AssetKey("daily")) == {"2024-01-02"}
    assert not (tmp_path / "history" / "runs").exists()
    assert (tmp_path / "history" / "events" / "event_log.db").exists()


WATCHED_RUN = textwrap.dedent("""
    import sys, time
    import dagster as dg

    @dg.op
    def ticks(context):
        for i in range(4):
            context.log.info(f"tick {i}")
            time.sleep(1)

    @dg.job
    def ticking():
        ticks()

    ticking.execute_in_process(instance=dg.DagsterInstance.from_config(sys.argv[1]), run_id=sys.argv[2])
""")


def test_the_ui_sees_a_runs_events_while_it_runs(tmp_path):
    """The web UI streams a run's log through the event storage's watch: with the project's storage each event
    arrives as it is written, not when the run ends."""
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = prepare(tmp_path)
    run_id, seen, t0 = "00000000-0000-4000-8000-00000000abcd", [], time.time()
    instance.watch_event_logs(run_id, None, lambda event, cursor: seen.append((time.time() - t0, event.user_message)))
    try:
        subprocess.run([sys.executable, "-c", WATCHED_RUN, str(tmp_path), run_id], check=True, timeout=90)
        time.sleep(2)
    finally:
        instance.dispose()
    ticks = [t for t, message in seen if message.startswith("tick")]
    assert len(ticks) == 4, seen
    assert ticks[-1] - ticks[0] > 2, f"the run's 3 s of ticks arrived within {ticks[-1] - ticks[0]:.1f} s"
