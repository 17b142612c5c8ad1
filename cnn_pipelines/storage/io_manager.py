"""Dagster IO manager over the lake: one Parquet file per partition, atomic writes, windowed loads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd

from cnn_pipelines.storage import lake
from cnn_pipelines.storage.spool import SpooledTable
from cnn_pipelines.trading.prices.adjustments import adjust_as_of

WEEKDAY_CRON = "0 0 * * 1-5"
JSON_FILE = "data.json"


def partition_column(partitions_def: dg.PartitionsDefinition | None) -> str:
    """Hive directory name: ``date`` for weekday (daily) tables, ``period`` for walk-forward periods."""
    cron = getattr(partitions_def, "cron_schedule", None)
    return "date" if cron == WEEKDAY_CRON else "period"


_WINDOW_CACHE: dict[tuple, pd.DataFrame] = {}
_WINDOW_CACHE_SIZE = 2


def _cached_window(root: Path, table: str, keys: list[str], column: str, lookahead: int) -> pd.DataFrame:
    """A window of partitions, read once per process while its files are unchanged.

    The research assets of one period (and the nightly ones) read the same training window of the same
    tables one after another in a run; reading 12 months of one-file-per-day partitions costs seconds
    each time. The key holds every file's size and mtime, so a rewritten partition is read again."""
    paths = list(dict.fromkeys(lake.partition_path(root, table, k, column) for k in keys))  # month files
    stamp = tuple(lake.stamp(p) for p in paths)
    key = (lake.location(lake.as_root(root)), table, tuple(keys), column, lookahead, stamp)
    if key not in _WINDOW_CACHE:
        frame = lake.read_partitions(root, table, keys, column, optional_tail=lookahead)
        # what this frame is, for caches downstream (the research assets join it once per period)
        frame.attrs["lake_window"] = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
        while len(_WINDOW_CACHE) >= _WINDOW_CACHE_SIZE:
            _WINDOW_CACHE.pop(next(iter(_WINDOW_CACHE)))
        _WINDOW_CACHE[key] = frame
    return _WINDOW_CACHE[key].copy(deep=False)  # callers may add columns without touching the cache


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames (or tables spooled in pieces, ``SpooledTable``) as ``<root>/<asset>/month=YYYY-MM/data.parquet`` (weekday partitions, one file a month),
    ``<root>/<asset>/period=YYYY-MM-DD/data.parquet`` (monthly research periods) or ``<root>/<asset>/data.parquet``;
    dicts (layouts, model summaries) as ``data.json`` in the same places. Nothing is pickled.

    A multi-partition weekday output (a range run under ``BackfillPolicy.single_run()``) is split by its
    ``date`` column; inputs load every upstream partition the partition mapping asks for and fail clearly when
    some were never materialized. Each new table gets a DuckDB view in ``<root>/lake.duckdb``.
    """

    root: str = "data_lake"

    @property
    def root_path(self) -> Path:
        """The lake root as a path object (local folder, or the bucket for an s3:// root)."""
        return lake.as_root(self.root)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        table = context.asset_key.path[-1]
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        column = partition_column(context.asset_partitions_def) if context.has_asset_partitions else None
        if isinstance(obj, dict):
            if len(keys) != 1:
                raise ValueError(f"{table}: a JSON output covers one partition, got {len(keys)}")
            path = (lake.partition_path(self.root_path, table, keys[0], column, JSON_FILE) if keys[0]
                    else lake.table_dir(self.root_path, table) / JSON_FILE)
            lake.write_json(path, obj)
            context.add_output_metadata({"lake_path": dg.MetadataValue.path(lake.location(path))})
            return
        if isinstance(obj, SpooledTable):
            if column != "date":
                raise ValueError(f"{table}: a spooled table is written to weekday partitions, not {column or 'one file'}")
            try:
                lake.write_spooled(self.root_path, table, obj, keys)
            finally:
                obj.close()
            lake.ensure_views(self.root_path, [table])
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{table}: the lake stores DataFrames, spooled tables and dicts, got {type(obj).__name__}")
        if column == "date":
            # Rows per partition are the asset's metadata; no path here: it would be copied onto every partition
            # of a range run (a few hundred bytes of event history each), and the catalog names the table.
            lake.write_partitions(self.root_path, table, obj, keys)
        else:
            if len(keys) != 1:
                raise ValueError(f"{table}: period tables are written one partition per run, got {len(keys)}")
            path = lake.write_table(self.root_path, table, obj, keys[0], column or "period")
            context.add_output_metadata({"lake_path": dg.MetadataValue.path(lake.location(path))})
        lake.ensure_views(self.root_path, [table])

    def load_input(self, context: dg.InputContext):
        upstream = context.upstream_output
        table = upstream.asset_key.path[-1] if upstream else context.asset_key.path[-1]
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            column = partition_column(context.asset_partitions_def)
            json_paths = [lake.partition_path(self.root_path, table, k, column, JSON_FILE) for k in keys]
            if len(keys) == 1 and json_paths[0].exists():
                return lake.read_json(json_paths[0])
            lookahead = int((context.definition_metadata or {}).get("lookahead", 0))
            if len(keys) == 1:  # one partition: cheap, and caching it would evict the windows
                frame = lake.read_partitions(self.root_path, table, keys, column, optional_tail=lookahead)
            else:
                frame = _cached_window(self.root_path, table, keys, column, lookahead)
            # prices are stored as reported with each bar's adjustment: a reader sees them adjusted as of the
            # last day it reads (no later action can reach into its window)
            return adjust_as_of(frame)
        json_path = lake.table_dir(self.root_path, table) / JSON_FILE
        if json_path.exists():
            return lake.read_json(json_path)
        return lake.read_table(self.root_path, table)
