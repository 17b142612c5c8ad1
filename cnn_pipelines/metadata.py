"""Metadata attached to an asset's materialization only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import pandas as pd


def asset_output(context: dg.AssetExecutionContext, value: Any, metadata: Mapping[str, Any] | None) -> dg.Output:
    """``value`` as the step's output with ``metadata`` on the asset's materialization.

    Metadata given to ``dg.Output`` is stored twice, in the step-output event and in the materialization; a
    period's pictures would double the instance's history for nothing. Asset metadata is stored once."""
    metadata = _with_covers(context, metadata or {})
    if metadata:
        context.add_asset_metadata(metadata)
    return dg.Output(value)


def asset_result(context: dg.AssetExecutionContext, metadata: Mapping[str, Any]) -> dg.MaterializeResult:
    """A materialization whose ``metadata`` is stored once (see ``asset_output``)."""
    context.add_asset_metadata(_with_covers(context, metadata))
    return dg.MaterializeResult()


def _with_covers(context: dg.AssetExecutionContext, metadata: Mapping[str, Any]) -> dict:
    """``metadata`` headed by ``lake_covers`` (``run_covers``) unless it already names it."""
    return dict(metadata) if "lake_covers" in metadata else {**run_covers(context), **metadata}


def lake_covers(root, table: str, keys: list[str], column: str = "date") -> dict:
    """``lake_covers``: the first and last partition of ``table`` in the lake at ``root``, with this run's
    ``keys``, and how many there are. ``column``: "date" for weekday tables (month files, or a folder per day
    for JSON documents), "period" for the monthly research tables."""
    from cnn_pipelines.storage import lake

    d = lake.table_dir(root, table)
    held = set(keys)
    if d.exists():
        held |= set(lake.materialized_keys(root, table)) if column == "date" else set()
        held |= {p.name.removeprefix(f"{column}=") for p in d.glob(f"{column}=*") if any(p.glob("data.*"))}
    days = sorted(held)
    if not days:
        return {"lake_covers": "nothing yet"}
    count = f"{len(days)} {'monthly' if column == 'period' else 'weekday'} partition{'s' if len(days) > 1 else ''}"
    if column == "period":
        return {"lake_covers": f"{days[0][:7]} .. {days[-1][:7]} ({count})"}
    return {"lake_covers": f"{days[0]} .. {days[-1]} ({count})"}


def run_covers(context: dg.AssetExecutionContext, keys: list[str] | None = None) -> dict:
    """``lake_covers`` for a run of a partitioned asset stored in the lake (its "lake" resource), so its page
    names the range built before it, not only the partitions its latest event is about: ``keys`` (a range run's
    partitions) or the run's one partition; {} for an unpartitioned asset or a range run without ``keys``."""
    root = getattr(getattr(context.resources, "lake", None), "root", None)
    partitions = context.assets_def.partitions_def
    # an unpartitioned asset in a partitioned run (study_report in the nightly run) has the run's key too
    if root is None or partitions is None or (keys is None and not context.has_partition_key):
        return {}
    from cnn_pipelines.storage import lake

    monthly = isinstance(partitions, dg.MonthlyPartitionsDefinition)
    return lake_covers(lake.as_root(root), context.asset_key.path[-1], keys or [context.partition_key],
                       "period" if monthly else "date")


def table_value(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """A DataFrame as a table the UI renders inline; a column with gaps reads "n/a" there, never nan."""
    columns, records = [], []
    shown = frame.copy()
    for c in frame.columns:
        kind = ("int" if pd.api.types.is_integer_dtype(frame[c]) else
                "float" if pd.api.types.is_float_dtype(frame[c]) else "string")
        if kind == "float" and frame[c].dtype.itemsize < 8:  # float32 0.1484 is 0.14839999 as a Python float
            shown[c] = pd.Series([float(str(v)) for v in frame[c].to_numpy()], index=frame.index, dtype=object)
        if kind == "float" and frame[c].isna().any():
            shown[c] = frame[c].map(lambda v: "n/a" if pd.isna(v) else f"{v:g}")
            kind = "string"
        elif kind == "string":
            shown[c] = frame[c].astype(str)
        columns.append(dg.TableColumn(str(c), kind))
    for row in shown.itertuples(index=False):
        records.append(dg.TableRecord({str(c): (v.item() if hasattr(v, "item") else v)
                                       for c, v in zip(frame.columns, row)}))
    return dg.MetadataValue.table(records, dg.TableSchema(columns))


def settings_table(settings: Mapping[str, Any]) -> dg.TableMetadataValue:
    """A model's settings as a two-column table shown inline (not a JSON blob of a dozen keys); an unset
    setting reads "not set" (its default applies), never None."""
    return table_value(pd.DataFrame({"setting": list(settings),
                                     "value": ["not set" if v is None else str(v) for v in settings.values()]}))


def percent(share: float, digits: int = 2, missing: str = "n/a") -> float | str:
    """A share (0.9102) as the percentage a reader expects (91.02), rounded to ``digits``; a share that does not
    exist (no images, NaN) reads ``missing``. Keys and columns holding it name the unit (``_pct``, ``%``)."""
    value = float(share)
    return round(100 * value, digits) if value == value and abs(value) != float("inf") else missing


def percent_value(share: float, digits: int = 2, missing: str = "n/a (nothing to count)") -> dg.MetadataValue:
    """``percent`` as a metadata value: a float the Plots tab can draw, or the text saying why there is none."""
    value = percent(share, digits, missing)
    return dg.MetadataValue.text(value) if isinstance(value, str) else dg.MetadataValue.float(value)


def listed(items: Iterable[Any], limit: int = 10) -> str:
    """Items as one line for a log or a metadata value: all of them up to ``limit``, else the first ``limit``
    and how many more (a universe of quarantined tickers is not a 15-line list)."""
    items, limit = list(items), max(1, limit)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more ({len(items)} in all)"


def inline(value: Mapping[str, Any] | Iterable[Any]) -> dg.MetadataValue:
    """A short list ("6, 7, 8") or mapping ("days 46; tickers 40") as one line of text, "none" when empty;
    inline JSON took a line per item and quoted every key."""
    if isinstance(value, Mapping):
        return dg.MetadataValue.text("; ".join(f"{k} {v}" for k, v in value.items()) or "none")
    return short_list(value)


def short_list(items: Iterable[Any], limit: int = 10) -> dg.MetadataValue:
    """A list as one line of metadata text: "none" when empty (not "[]"), the items up to ``limit``, else the
    first ``limit`` and a count (inline JSON took a line per item)."""
    items = list(items)
    return dg.MetadataValue.text(listed(items, limit) if items else "none")
