"""Dagster event-log storage for this project's instance: one SQLite database, one copy of each event.

Dagster's default SQLite event storage writes every asset event twice (the run's own database and an index
database), and Dagster 1.13 plans each asset check of a range run once per partition: a 520-partition run of
``raw_prices`` leaves 5 checks x 520 rows that stay "planned" forever (the check is evaluated once, for the
whole range, with no partition), each row holding the full planned event. One ``make run`` left 42 MB of
history that way, most of it these copies. ``LeanSqliteEventLogStorage`` keeps every event once and plans a
range run's check once, the row its evaluation then completes (a one-partition run's planned row, under the
partition, is replaced by the evaluation's). Per-partition materialization planned events are
kept, so a failed range run still marks its partitions failed in the UI.

``dagster.yaml`` selects it; ``migrate_sharded_history`` carries an instance's older history over.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from dagster import Field, StringSource
from dagster._core.events import AssetCheckEvaluationPlanned
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import (
    ConsolidatedSqliteEventLogStorage,
)
from dagster._serdes import deserialize_value

HISTORY_DIR = "history/events"        # under $DAGSTER_HOME
SHARDED_DIR = "history/runs"          # where Dagster's default SQLite event storage keeps its databases


class LeanSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """All events in ``<base_dir>/event_log.db`` (default: ``history/events`` under the instance's root
    directory); a range run's asset checks planned once per run, not once per partition."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._inst_data, self._obs = inst_data, None
        self._pending = base_dir is None          # opened when the instance registers (its root is known then)
        if base_dir is not None:
            super().__init__(base_dir, inst_data=inst_data)

    def register_instance(self, instance) -> None:
        if self._pending:
            self._pending = False
            super().__init__(str(Path(instance.root_directory) / HISTORY_DIR), inst_data=self._inst_data)
        super().register_instance(instance)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    def _store_asset_check_evaluation_planned(self, event, event_id):
        planned = event.dagster_event.event_specific_data
        if planned.partitions_subset is not None and len(planned.partitions_subset) > 1:
            # A range run's step has no single partition key, so Dagster records the check's evaluation with
            # partition None: plan one such row instead of one per partition that nothing ever completes.
            single = AssetCheckEvaluationPlanned(asset_key=planned.asset_key, check_name=planned.check_name,
                                                 partitions_subset=None)
            event = event._replace(dagster_event=event.dagster_event._replace(event_specific_data=single))
        super()._store_asset_check_evaluation_planned(event, event_id)

    def _update_asset_check_evaluation(self, event, event_id):
        evaluation = event.dagster_event.event_specific_data
        if evaluation.partition is None:
            # A one-partition run plans an unpartitioned check under the run's partition, and its evaluation
            # (partition None) is stored as a new row: the planned one would stay "planned" forever.
            table = AssetCheckExecutionsTable
            with self.index_connection() as conn:
                conn.execute(table.delete().where(
                    (table.c.asset_key == evaluation.asset_key.to_string())
                    & (table.c.check_name == evaluation.check_name) & (table.c.run_id == event.run_id)
                    & (table.c.execution_status == AssetCheckExecutionRecordStatus.PLANNED.value)
                    & table.c.partition.isnot(None)))
        super()._update_asset_check_evaluation(event, event_id)


def migrate_sharded_history(home: Path, storage: LeanSqliteEventLogStorage) -> int:
    """Replay the events of Dagster's default per-run SQLite databases under ``home`` into ``storage`` (in
    the order they happened) and remove those databases; returns the number of events carried over.

    Runs recorded before this storage was configured keep their logs, asset history and check results. The
    events are replayed into a staging database that replaces ``storage``'s (still empty) one only when
    complete, so an interrupted migration leaves the old history as it was. Does nothing when there is no old
    history or ``storage`` already holds events."""
    shards = sorted(p for p in (home / SHARDED_DIR).glob("*.db") if p.name != "index.db")
    if not shards or storage.get_maximum_record_id():
        return 0
    events = []
    for shard in shards:
        with closing(sqlite3.connect(shard)) as con:
            events += [deserialize_value(text) for (text,) in con.execute("select event from event_logs order by id")]
    events.sort(key=lambda e: e.timestamp)  # stable: a run's events keep their order
    staging = Path(f"{storage.get_db_path()}.migrating")
    shutil.rmtree(staging, ignore_errors=True)
    target = LeanSqliteEventLogStorage(str(staging))
    try:
        for event in events:
            target.store_event(event)
    finally:
        target.dispose()
    staged = Path(target.get_db_path())
    with closing(sqlite3.connect(staged)) as con:
        con.execute("pragma wal_checkpoint(TRUNCATE)")
    live = Path(storage.get_db_path())
    for leftover in (Path(f"{live}-wal"), Path(f"{live}-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(staged, live)
    shutil.rmtree(staging)
    shutil.rmtree(home / SHARDED_DIR)
    return len(events)
