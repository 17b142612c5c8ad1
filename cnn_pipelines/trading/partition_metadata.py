"""Metadata for weekday-partitioned outputs that is true per partition, with run-level numbers reported once.

A range run (``BackfillPolicy.single_run()``) records one materialization per partition. Metadata passed to
``dg.Output`` is copied onto every one of them: partition 2026-11-25 would show the whole run's row count, and
each of 520 partitions would carry every picture of the run (tens of MB of event history per run). Here each
partition gets its own rows, tickers and date; the run's totals, tables and pictures go on the run's newest
partition only, labelled with the range they describe.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from cnn_pipelines.metadata import run_covers
from cnn_pipelines.storage.spool import SpooledTable


@dataclass(frozen=True)
class TableSummary:
    """Rows and distinct tickers per day (YYYY-MM-DD), and distinct tickers overall, of a long table."""

    day_rows: dict[str, int]
    day_tickers: dict[str, int]
    tickers: int

    @classmethod
    def of(cls, table: pd.DataFrame | SpooledTable) -> TableSummary:
        if isinstance(table, SpooledTable):
            return cls(dict(table.day_rows), dict(table.day_tickers), len(table.tickers))
        if not len(table):
            return cls({}, {}, 0)
        days = pd.to_datetime(table["date"]).dt.strftime("%Y-%m-%d").to_numpy()
        grouped = table["ticker"].groupby(days)
        return cls({k: int(v) for k, v in grouped.size().items()}, {k: int(v) for k, v in grouped.nunique().items()},
                   int(table["ticker"].nunique()))


def partition_meta(summary: TableSummary, key: str) -> dict:
    """Rows and distinct tickers of one partition (the partition key names its date)."""
    return {"rows": summary.day_rows.get(key, 0), "tickers": summary.day_tickers.get(key, 0)}


def run_meta(summary: TableSummary, keys: list[str]) -> dict:
    """The run's totals: rows, tickers, and the partitions and dates it covered."""
    days = sorted(summary.day_rows)
    return {"run_partitions": f"{keys[0]} .. {keys[-1]} ({len(keys)} partitions)" if len(keys) > 1 else keys[0],
            "run_rows": sum(summary.day_rows.values()), "run_tickers": summary.tickers,
            "run_first_date": days[0] if days else "n/a (no rows)",
            "run_last_date": days[-1] if days else "n/a (no rows)"}


def report(context: dg.AssetExecutionContext, table: pd.DataFrame | SpooledTable, per_run: dict) -> dict:
    """Attach per-partition metadata to each partition of this run and ``per_run`` (plus the run's totals and
    what the lake covers) to the newest one; returns what ``dg.Output`` should carry (everything, for a
    one-partition run)."""
    keys = list(context.partition_keys)
    summary = TableSummary.of(table)
    per_run = {**run_covers(context, keys), **per_run}
    if len(keys) == 1:
        return {**partition_meta(summary, keys[0]), **run_meta(summary, keys), **per_run}
    for key in keys:
        context.add_asset_metadata(partition_meta(summary, key), partition_key=key)
    context.add_asset_metadata({**run_meta(summary, keys), **per_run}, partition_key=keys[-1])
    return {}
