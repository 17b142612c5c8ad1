"""Metadata for weekday-partitioned outputs that is true per partition, with run-level numbers reported once.

A range run (``BackfillPolicy.single_run()``) records one materialization per partition. Metadata passed to
``dg.Output`` is copied onto every one of them: partition 2026-11-25 would show the whole run's row count, and
each of 520 partitions would carry every picture of the run (tens of MB of event history per run). Here each
partition gets its own rows, tickers and date; the run's totals, tables and pictures go on the run's newest
partition only, labelled with the range they describe.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd


def partition_meta(rows: pd.DataFrame, key: str) -> dict:
    """Rows and distinct tickers of one partition's slice (the partition key names its date)."""
    return {"rows": len(rows), "tickers": int(rows["ticker"].nunique()) if len(rows) else 0}


def run_meta(table: pd.DataFrame, keys: list[str]) -> dict:
    """The run's totals: rows, tickers, and the partitions and dates it covered."""
    dates = table["date"] if len(table) else pd.Series([], dtype=object)
    return {"run_partitions": f"{keys[0]} .. {keys[-1]} ({len(keys)} partitions)" if len(keys) > 1 else keys[0],
            "run_rows": len(table), "run_tickers": int(table["ticker"].nunique()) if len(table) else 0,
            "run_first_date": str(min(dates)) if len(dates) else "n/a (no rows)",
            "run_last_date": str(max(dates)) if len(dates) else "n/a (no rows)"}


def report(context: dg.AssetExecutionContext, table: pd.DataFrame, per_run: dict) -> dict:
    """Attach per-partition metadata to each partition of this run and ``per_run`` (plus the run's totals) to
    the newest one; returns what ``dg.Output`` should carry (everything, for a one-partition run)."""
    keys = list(context.partition_keys)
    if len(keys) == 1:
        return {**partition_meta(table, keys[0]), **run_meta(table, keys), **per_run}
    days = pd.to_datetime(table["date"]).dt.strftime("%Y-%m-%d") if len(table) else pd.Series([], dtype=object)
    groups = {k: g for k, g in table.groupby(days.to_numpy())} if len(table) else {}
    empty = table.iloc[:0]
    for key in keys:
        context.add_asset_metadata(partition_meta(groups.get(key, empty), key), partition_key=key)
    context.add_asset_metadata({**run_meta(table, keys), **per_run}, partition_key=keys[-1])
    return {}
