"""Dagster event-log storage for this project's instance: one SQLite database, one copy of each event.

Dagster's default SQLite event storage writes every asset event twice (the run's own database and an index
database), and Dagster 1.13 plans each asset check of a range run once per partition: a 520-partition run of
``raw_prices`` leaves 5 checks x 520 rows that stay "planned" forever (the check is evaluated once, for the
whole range, with no partition), each row holding the full planned event. One ``make run`` left 42 MB of
history that way, most of it these copies. ``LeanSqliteEventLogStorage`` keeps every event once and plans a
range run's check once, the row its evaluation then completes (a one-partition run's planned row, under the
partition, is replaced by the evaluation's).

It also stores what Dagster would repeat: a run plans each asset once, with the run's partitions as a subset,
instead of one planned event per partition (a third of a 520-partition run's history); this storage reads those
subsets back wherever Dagster asks per partition, so a failed range run still marks its partitions failed and a
partition's latest run is still found. And an asset's latest materialization is not copied, pictures and all,
into its asset-key row: Dagster reads it from the event log when that copy is absent (3 MB of ``make run``).

``dagster.yaml`` selects it; ``migrate_sharded_history`` carries an instance's older history over.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from dagster import AssetKey, DagsterEventType, Field, StringSource
from dagster._core.events import AssetCheckEvaluationPlanned
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.base import PlannedMaterializationInfo
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.in_memory import InMemoryEventLogStorage
from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import (
    ConsolidatedSqliteEventLogStorage,
)
from dagster._core.storage.sqlalchemy_compat import db_fetch_mappings, db_select
from dagster._serdes import deserialize_value

PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value
MATERIALIZED = DagsterEventType.ASSET_MATERIALIZATION.value

HISTORY_DIR = "history/events"        # under $DAGSTER_HOME
SHARDED_DIR = "history/runs"          # where Dagster's default SQLite event storage keeps its databases


class LeanEventLogMixin:
    """What makes an SQL event-log storage lean (see the module doc): a range run's assets and asset checks
    planned once per run, not once per partition, and no copy of an asset's latest materialization. Mixed into
    Dagster's SQL storages; the methods below only use what every ``SqlEventLogStorage`` has."""

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True   # one planned event per asset and run; the two readers below expand its partitions

    def _ranged_plans(self, asset_key: AssetKey, after_storage_id: int | None = None) -> list[tuple]:
        """(storage id, run id, partitions subset) of each planned event of ``asset_key`` that names its
        partitions as a subset, oldest first, after the cursor and the asset's last wipe."""
        table = SqlEventLogStorageTable
        query = db_select([table.c.id, table.c.run_id, table.c.event]).where(
            (table.c.asset_key == asset_key.to_string()) & (table.c.dagster_event_type == PLANNED)
            & table.c.partition.is_(None))
        if after_storage_id is not None:
            query = query.where(table.c.id > after_storage_id)
        query = self._add_assets_wipe_filter_to_query(query, self._get_assets_details([asset_key]), [asset_key])
        with self.index_connection() as conn:
            rows = db_fetch_mappings(conn, query.order_by(table.c.id.asc()))
        plans = []
        for row in rows:
            subset = deserialize_value(row["event"], EventLogEntry).get_dagster_event().event_specific_data \
                .partitions_subset
            if subset is not None:
                plans.append((row["id"], row["run_id"], subset))
        return plans

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: AssetKey, after_storage_id: int | None = None
    ) -> dict[str, tuple[str, int]]:
        """Partitions whose latest plan (per partition, or in a run's subset) has no materialization after it:
        ``{partition: (run id, planned storage id)}``. Dagster marks them failed or in progress by their run."""
        attempts = dict(super().get_latest_asset_partition_materialization_attempts_without_materializations(
            asset_key, after_storage_id=after_storage_id))
        plans = self._ranged_plans(asset_key, after_storage_id)
        if not plans:
            return attempts
        latest_ranged: dict[str, tuple[str, int]] = {}
        for storage_id, run_id, subset in plans:
            latest_ranged.update((key, (run_id, storage_id)) for key in subset.get_partition_keys())
        latest = self._latest_event_ids_by_partition_subquery(asset_key, [DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.ASSET_MATERIALIZATION_PLANNED], after_cursor=after_storage_id)
        with self.index_connection() as conn:
            ids = {(row["dagster_event_type"], row["partition"]): row["id"]
                   for row in db_fetch_mappings(conn, db_select([latest.c.dagster_event_type, latest.c.partition,
                                                                     latest.c.id]))}
        for key, (run_id, storage_id) in latest_ranged.items():
            if storage_id < ids.get((PLANNED, key), 0):
                continue                                  # a later one-partition plan decides, as Dagster found
            if storage_id > ids.get((MATERIALIZED, key), 0):
                attempts[key] = (run_id, storage_id)
            else:
                attempts.pop(key, None)
        return attempts

    def get_latest_planned_materialization_info(
        self, asset_key: AssetKey, partition: str | None = None
    ) -> PlannedMaterializationInfo | None:
        info = super().get_latest_planned_materialization_info(asset_key, partition)
        if partition is None:
            return info                                   # any plan of the asset, the ranged ones included
        for storage_id, run_id, subset in reversed(self._ranged_plans(asset_key, info.storage_id if info else None)):
            if partition in subset:
                return PlannedMaterializationInfo(storage_id=storage_id, run_id=run_id)
        return info

    def _get_asset_entry_values(self, event, event_id, has_asset_key_index_cols):
        values = super()._get_asset_entry_values(event, event_id, has_asset_key_index_cols)
        if "last_materialization" in values:
            values["last_materialization"] = None       # read from the event log instead (see the module doc)
        return values

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


class LeanSqliteEventLogStorage(LeanEventLogMixin, ConsolidatedSqliteEventLogStorage):
    """All events in ``<base_dir>/event_log.db`` (default: ``history/events`` under the instance's root
    directory), kept lean."""

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


class LeanInMemoryEventLogStorage(LeanEventLogMixin, InMemoryEventLogStorage):
    """The lean storage in memory: what ``ephemeral_instance`` runs in-process jobs (the audit, tests) on."""


def ephemeral_instance():
    """Dagster's ephemeral instance (in memory, nothing kept; as ``DagsterInstance.ephemeral()`` builds it) on
    the lean event storage: a range run over hundreds of partitions stores one planned event per asset instead
    of one per partition."""
    from dagster._core.instance import DagsterInstance, InstanceType
    from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
    from dagster._core.run_coordinator import DefaultRunCoordinator
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
    from dagster._core.storage.root import TemporaryLocalArtifactStorage
    from dagster._core.storage.runs import InMemoryRunStorage

    return DagsterInstance(
        instance_type=InstanceType.EPHEMERAL, local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=InMemoryRunStorage(), event_storage=LeanInMemoryEventLogStorage(),
        compute_log_manager=NoOpComputeLogManager(), run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )


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
