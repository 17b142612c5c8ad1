"""One ingestion of raw_prices, as a pure function: validate a fetched batch and merge it with what is stored.

The guarantees a user relies on live here, where a test can reach them without Dagster:

- **nothing stored is lost**: every stored (date, ticker) row that the batch does not deliver as a valid bar
  (file empty, header-only, truncated or gone, or the day's bar rejected) is written back unchanged, and its
  ticker is reported with what the source covers and what the lake holds;
- **day-local**: every rule looks at one (date, ticker) and at most ``STALE_LOOKBACK_DAYS`` before it, so
  ingesting a range gives the same rows as ingesting it day by day;
- **order-free**: neither the order of files nor of rows changes the result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from cnn_pipelines.trading.prices.adjustments import (ADJUSTMENT_LOOKBACK_DAYS, STORED_COLUMNS, adjustment_ratios,
                                                      with_adjustments)
from cnn_pipelines.trading.prices.calendar import TradingCalendar
from cnn_pipelines.trading.prices.validation import (CANONICAL_COLUMNS, STALE_LOOKBACK_DAYS, ValidationReport,
                                                     validate_prices)


@dataclass
class Ingestion:
    """What one run writes and why."""

    table: pd.DataFrame          # the rows to write (valid new bars + kept stored rows), STORED_COLUMNS
    report: ValidationReport     # repairs and rejected rows of the batch
    kept: pd.DataFrame           # stored rows written back because the batch did not deliver them
    quarantine: pd.DataFrame     # rule + row for every rejected bar, unreadable file and source gap
    held: list[str]              # tickers with anything quarantined (the check fails on them)


def context_start(start: dt.date) -> dt.date:
    """First day to fetch for a run starting on ``start``: the days before are context only (the previous bar
    of a holiday repeat, and of the first days' adjustment ratios)."""
    return start - dt.timedelta(days=max(STALE_LOOKBACK_DAYS, ADJUSTMENT_LOOKBACK_DAYS))


def rows_to_keep(stored: pd.DataFrame, clean: pd.DataFrame) -> pd.DataFrame:
    """Stored rows whose (date, ticker) the validated batch does not deliver."""
    if not len(stored):
        return stored
    have = pd.MultiIndex.from_arrays([pd.Index(clean["date"]), pd.Index(clean["ticker"].astype(str))])
    rows = pd.MultiIndex.from_arrays([pd.Index(stored["date"]), pd.Index(stored["ticker"].astype(str))])
    return stored.loc[~rows.isin(have)]


def source_gaps(kept: pd.DataFrame, fetched: pd.DataFrame, explained: set[tuple[str, str]],
                unreadable: set[str]) -> pd.DataFrame:
    """One quarantine row per ticker whose source lacks stored days that no rejected bar or unreadable file
    explains, saying what the source covers and what the lake holds."""
    empty = pd.DataFrame(columns=["rule", "ticker"])
    if not len(kept):
        return empty
    k = kept.assign(ticker=kept["ticker"].astype(str), day=kept["date"].astype(str))
    k = k.loc[[(d, t) not in explained and t not in unreadable for d, t in zip(k["day"], k["ticker"])]]
    if not len(k):
        return empty
    cover = (pd.to_datetime(fetched["date"]).groupby(fetched["ticker"].astype(str).to_numpy()).agg(["min", "max"])
             if len(fetched) else pd.DataFrame(columns=["min", "max"]))
    rows = []
    for ticker, g in k.groupby("ticker"):
        if ticker in cover.index:
            src = f"its source covers {cover.loc[ticker, 'min'].date()}..{cover.loc[ticker, 'max'].date()}"
        else:
            src = "its source has no rows in this range (file empty, header-only or gone)"
        rows.append({"rule": f"source lacks {len(g)} stored day(s) in {g['day'].min()}..{g['day'].max()}; {src}; "
                             f"the lake holds through {g['day'].max()}: stored rows kept", "ticker": ticker})
    return pd.DataFrame(rows)


def quarantine_table(report_quarantine: pd.DataFrame | None, file_errors: dict[str, str]) -> pd.DataFrame:
    """One row per rejected row (rule, date, ticker, values) plus one per unreadable file."""
    parts = [] if report_quarantine is None else [report_quarantine.astype({"date": str})]
    if file_errors:
        parts.append(pd.DataFrame({"rule": [f"unreadable file: {m}" for m in file_errors.values()],
                                   "ticker": list(file_errors)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["rule", *CANONICAL_COLUMNS])


def ingest(fetched: pd.DataFrame, stored: pd.DataFrame, start: dt.date, end: dt.date,
           calendar: TradingCalendar | None, strict: bool = False, source: str = "prices",
           file_errors: dict[str, str] | None = None) -> Ingestion:
    """Validate ``fetched`` (rows from ``context_start(start)`` to ``end``) for the days [start, end] and merge
    it with ``stored`` (what the lake holds for those days). Strict mode raises PriceValidationError on any
    rejected row instead of quarantining it."""
    file_errors = dict(file_errors or {})
    clean, report = validate_prices(fetched, source=source, calendar=calendar, strict=strict, window=(start, end))
    usable, _ = validate_prices(fetched, source=source, calendar=calendar, strict=False)  # context rows too
    clean = with_adjustments(clean, adjustment_ratios(fetched, valid=usable))
    if len(stored):
        adjustment = stored["adjustment"].fillna(1.0) if "adjustment" in stored.columns else 1.0  # older lakes
        stored = stored.assign(adjustment=adjustment)[STORED_COLUMNS]
    else:
        stored = pd.DataFrame(columns=STORED_COLUMNS)
    kept = rows_to_keep(stored, clean)
    in_range = fetched.loc[pd.to_datetime(fetched["date"]) >= pd.Timestamp(start)] if len(fetched) else fetched
    explained = set() if report.quarantine is None else set(
        zip(report.quarantine["date"].astype(str), report.quarantine["ticker"].astype(str)))
    gaps = source_gaps(kept, in_range, explained, set(file_errors))
    parts = [q for q in (quarantine_table(report.quarantine, file_errors), gaps) if len(q)]
    quarantine = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["rule", *CANONICAL_COLUMNS])
    # rows without a day (an unreadable file, a source gap) still carry every column, empty: readers of the
    # quarantine (the ledger of held-back days, the check's table) need not ask which kinds it holds
    quarantine = quarantine.reindex(columns=list(dict.fromkeys(["rule", *CANONICAL_COLUMNS, *quarantine.columns])))
    held = sorted(set(report.quarantined_tickers) | set(file_errors) | set(gaps["ticker"]))
    table = clean
    if len(kept):
        table = pd.concat([clean, kept.astype(clean.dtypes.to_dict())], ignore_index=True)
        table = table.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
    return Ingestion(table=table, report=report, kept=kept, quarantine=quarantine, held=held)
