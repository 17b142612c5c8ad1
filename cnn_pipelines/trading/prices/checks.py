"""Asset checks on raw_prices: invariants of what was written, and freshness of the newest partition."""


import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import short_list, table_value
from cnn_pipelines.storage import lake
from cnn_pipelines.trading.prices.adjustments import STORED_COLUMNS
from cnn_pipelines.trading.prices.resources import PriceSource

EXPECTED_DTYPES = {"ticker": "string", "open": "float64", "high": "float64", "low": "float64", "close": "float64",
                   "volume": "float64", "adjustment": "float64"}


def schema_problems(df: pd.DataFrame) -> list[str]:
    """Differences from the canonical schema (empty if it matches)."""
    problems = []
    if list(df.columns) != STORED_COLUMNS:
        problems.append(f"columns {list(df.columns)} != {STORED_COLUMNS}")
        return problems
    for col, dtype in EXPECTED_DTYPES.items():
        if str(df[col].dtype) != dtype:
            problems.append(f"{col}: {df[col].dtype} (expected {dtype})")
    if len(df) and not all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in df["date"].head(5)):
        problems.append("date values are not dates")
    return problems


def sanity_violations(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a non-positive/NaN price, open or close outside [low, high], or negative volume."""
    px = df[["open", "high", "low", "close"]]
    bad = (
        (px <= 0).any(axis=1) | px.isna().any(axis=1)
        | (df["open"] > df["high"]) | (df["close"] > df["high"])
        | (df["open"] < df["low"]) | (df["close"] < df["low"])
        | (df["volume"] < 0) | df["volume"].isna()
        | ~(df["adjustment"] > 0 if "adjustment" in df.columns else True)
    )
    return df.loc[bad]


def bar_text(row: pd.Series) -> str:
    """A bar's values on one line, o/h/l/c and volume (the UI cuts a table wider than about seven columns)."""
    parts = [f"{k[0]} {row[k]:g}" for k in ("open", "high", "low", "close") if k in row and pd.notna(row[k])]
    if "volume" in row and pd.notna(row["volume"]):
        parts.append(f"v {row['volume']:,.0f}")
    if "adjustment" in row and pd.notna(row["adjustment"]) and row["adjustment"] != 1:
        parts.append(f"adj {row['adjustment']:g}")
    return " ".join(parts) or "no bar (file or source)"


def bars_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Bars as ticker, date and their values on one line (``bar_text``): three narrow columns."""
    return pd.DataFrame({"ticker": rows["ticker"].astype(str), "date": rows["date"].astype(str),
                         "bar": [bar_text(r) for _, r in rows.iterrows()]})


def bars_table(rows: pd.DataFrame) -> dg.TableMetadataValue:
    """``bars_frame`` as a table the UI shows inline."""
    return table_value(bars_frame(rows))


REJECTIONS = "raw_prices_rejections"  # the bars ingestion held back, by day: a lake table (and DuckDB view)
MOVE_LIMIT = 5.0       # a close more than 5x, or under a fifth of, the previous one: +400 % / -80 % in a day
MOVE_LOOKBACK_DAYS = 10  # the previous bar must be this recent (calendar days); after a longer halt anything goes


def implausible_moves(bars: pd.DataFrame, since: dt.date | None = None, limit: float = MOVE_LIMIT) -> pd.DataFrame:
    """Closes that moved by more than ``limit``x from the ticker's previous bar (at most MOVE_LOOKBACK_DAYS
    earlier), after the split/dividend adjustment on the later bar: a vendor's bad tick or a unit change (a
    London price in pounds among pence is 100x), or a split the file does not report. Real daily moves that
    large are rare enough to be worth a look. ``bars`` are stored rows (with ``adjustment`` where known);
    only moves dated on or after ``since`` are returned, the earlier bars being context."""
    cols = ["ticker", "date", "previous", "move"]
    if not len(bars):
        return pd.DataFrame(columns=cols)
    b = bars.assign(_day=pd.to_datetime(bars["date"])).sort_values(["ticker", "_day"], kind="stable")
    b = b.drop_duplicates(["ticker", "_day"], keep="last")
    adj = b["adjustment"].astype(float) if "adjustment" in b.columns else pd.Series(1.0, index=b.index)
    prev_close = b.groupby("ticker", sort=False)["close"].shift(1)
    prev_day = b.groupby("ticker", sort=False)["_day"].shift(1)
    move = b["close"] / (prev_close * adj)
    recent = (b["_day"] - prev_day) <= pd.Timedelta(days=MOVE_LOOKBACK_DAYS)
    flagged = recent & ((move > limit) | (move < 1 / limit))
    if since is not None:
        flagged &= b["_day"] >= pd.Timestamp(since)
    hit = b.loc[flagged]
    return pd.DataFrame({
        "ticker": hit["ticker"].astype(str).to_numpy(),
        "date": hit["_day"].dt.strftime("%Y-%m-%d").to_numpy(),
        "previous": [f"{d:%Y-%m-%d} close {c:g}" for d, c in zip(prev_day[flagged], prev_close[flagged])],
        "move": [f"close {c:g}, x{m:.3g}" + (f" after adj {a:g}" if a != 1 else "")
                 for c, m, a in zip(hit["close"], move[flagged], adj[flagged])],
    }, columns=cols)


def price_check_results(df: pd.DataFrame) -> Iterator[dg.AssetCheckResult]:
    """Check results for a frame about to be (or just) written as raw_prices."""
    problems = schema_problems(df)
    yield dg.AssetCheckResult(check_name="schema", passed=not problems, metadata={"problems": short_list(problems)})
    dups = df.loc[df.duplicated(["date", "ticker"], keep=False), ["date", "ticker"]] if not problems else df.iloc[:0]
    yield dg.AssetCheckResult(
        check_name="unique_date_ticker", passed=len(dups) == 0,
        metadata={"duplicates": len(dups), "examples": table_value(dups.head(10).astype(str)) if len(dups) else "none"},
    )
    bad = sanity_violations(df) if not problems else df.iloc[:0]
    yield dg.AssetCheckResult(
        check_name="price_sanity", passed=len(bad) == 0,
        metadata={"violations": len(bad), "examples": bars_table(bad.head(10)) if len(bad) else "none"},
    )


def freshness(root: Path, table: str, last_partition: str | None, max_lag_weekdays: int = 1,
              source_end: str | None = None) -> tuple[bool, dict]:
    """Whether the newest materialized partition is within ``max_lag_weekdays`` of the newest day there is to
    ingest: the newest partition key, or the source's last day where it ends before (a folder of historical
    files is as fresh as it can be once its last day is stored, and is not "behind" forever)."""
    keys = lake.materialized_keys(root, table)
    due = min(last_partition, source_end) if last_partition and source_end else last_partition
    meta = {"newest_materialized": keys[-1] if keys else "nothing yet", "newest_partition": last_partition,
            "source_ends": source_end or "not known before a download (or today)", "due": due}
    if not keys or due is None:
        return False, {**meta, "lag_weekdays": "n/a: nothing materialized"}
    lag = max(0, int(np.busday_count(keys[-1], due)))
    return lag <= max_lag_weekdays, {**meta, "lag_weekdays": lag}


def make_freshness_check(root: str, partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset="raw_prices", blocking=False,
                    description="Newest materialized partition is at most one weekday behind the newest day there is "
                                "to ingest (the newest partition, or the last day the price files hold)")
    def raw_prices_freshness(context: dg.AssetCheckExecutionContext, prices: PriceSource) -> dg.AssetCheckResult:
        last = partitions_def.get_last_partition_key()
        coverage = prices.coverage()  # files: their last day; synthetic: today; yahoo: not known
        passed, meta = freshness(lake.as_root(root), "raw_prices", last,
                                 source_end=str(coverage[1]) if coverage else None)
        return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={k: dg.MetadataValue.text(str(v)) for k, v in meta.items()})

    return raw_prices_freshness
