"""The local Dagster instance ($DAGSTER_HOME): created once before first use, and cleared of runs whose
process died without a word.

Two first commands at once on a fresh home both create the SQLite storage and one of them fails with
``table runs already exists``; ``prepare`` creates it under a file lock (``make install`` and ``make run`` call
it, so every README command finds it ready). A run killed with SIGKILL outside ``dagster dev`` (whose daemon
monitors runs) stays STARTED forever; ``fail_dead_runs`` marks it failed, naming the dead process, and
``make run`` calls it before it launches anything.

``python -m cnn_pipelines.instance`` does both.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from cnn_pipelines.storage.events import SHARDED_DIR, LeanSqliteEventLogStorage, migrate_sharded_history

LOCK_FILE = ".instance.lock"


@contextmanager
def _locked(home: Path):
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare(home: Path | None = None) -> dg.DagsterInstance:
    """The instance at ``home`` ($DAGSTER_HOME by default) with its run, event and schedule storage created."""
    home = Path(home or os.environ.get("DAGSTER_HOME") or Path.cwd())
    with _locked(home):
        instance = dg.DagsterInstance.from_config(str(home))
        instance.get_runs(limit=1)                 # run storage
        instance.get_run_records(limit=1)
        instance.all_asset_keys()                  # event log storage
        instance.all_instigator_state()            # schedule storage
        if isinstance(instance.event_log_storage, LeanSqliteEventLogStorage):
            moved = migrate_sharded_history(home, instance.event_log_storage)
            if moved:
                print(f"moved {moved:,} events of earlier runs from {home / SHARDED_DIR} into "
                      f"{instance.event_log_storage.get_db_path()}")
    return instance


def run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process executing a run, from its first engine event that records one (None before it starts)."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.event_specific_data if record.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value if hasattr(pid, "value") else pid)
    return None


def process_alive(pid: int) -> bool:
    """True if ``pid`` runs a Python process (a reused pid of another program does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the signal check
    return b"python" in cmdline or b"dagster" in cmdline


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark STARTED runs whose process is gone as failed (with the pid in the message); returns their ids."""
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        pid = run_pid(instance, run.run_id)
        if pid is None or process_alive(pid):
            continue
        instance.report_run_failed(run, message=f"the process running it (pid {pid}) is gone: it was killed or "
                                                f"crashed without reporting; marked failed by cnn_pipelines.instance")
        failed.append(run.run_id)
    return failed


def main() -> int:
    instance = prepare()
    failed = fail_dead_runs(instance)
    print(f"instance ready at {instance.root_directory}; runs marked failed (process gone): {failed or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
