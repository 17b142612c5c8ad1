"""Dagster IO manager over the Parquet lake: one file per date partition, atomic writes, windowed loads."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from cnn_pipelines import lake


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames in ``<root>/<asset>/date=YYYY-MM-DD/data.parquet`` (or ``<root>/<asset>/data.parquet``).

    A multi-partition output (a range run under ``BackfillPolicy.single_run()``) is split by its ``date``
    column; inputs load every upstream partition the partition mapping asks for and fail clearly when some
    were never materialized. Each new table gets a DuckDB view in ``<root>/lake.duckdb``.
    """

    root: str = "data_lake"

    @property
    def _root(self) -> Path:
        return Path(self.root)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: the lake stores DataFrames, got {type(obj).__name__}")
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            counts = lake.write_partitions(self._root, table, obj, keys)
            context.add_output_metadata(
                {
                    "lake_path": dg.MetadataValue.path(str(lake.table_dir(self._root, table).resolve())),
                    "partitions_written": len(counts),
                    "empty_partitions": sum(1 for v in counts.values() if v == 0),
                }
            )
        else:
            path = lake.write_table(self._root, table, obj)
            context.add_output_metadata({"lake_path": dg.MetadataValue.path(str(path.resolve()))})
        lake.ensure_views(self._root, [table])

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        table = context.upstream_output.asset_key.path[-1] if context.upstream_output else context.asset_key.path[-1]
        if context.has_asset_partitions:
            return lake.read_partitions(self._root, table, list(context.asset_partition_keys))
        return lake.read_table(self._root, table)
