"""Validation of canonical price tables before anything is written to the lake.

Rules (applied in this order; ``repair`` rules fix rows and are counted, ``reject`` rules raise):

1. Missing columns or unparseable types                              -> reject (PriceSchemaError)
2. Rows whose open/high/low/close/volume are *all* NaN               -> repair: dropped (no bar that day;
   yfinance emits such rows for tickers that did not trade)
3. Exact duplicate (date, ticker) rows                               -> repair: one kept
4. Conflicting duplicate (date, ticker) rows (different values)      -> reject
5. Any remaining NaN price or volume, or a price <= 0                -> reject
6. high < low                                                        -> reject
7. open/close outside [low, high] by at most ``BAND_TOLERANCE`` (relative; rounding in vendor data)
                                                                     -> repair: high/low widened to include it
8. open/close outside [low, high] by more than that                  -> reject
9. volume < 0                                                        -> reject
10. Bars dated on a weekend or an exchange holiday (not a session of the calendar) that repeat the
    ticker's previous bar (same open/high/low/close; volume the same or 0): a vendor forward-filling
    calendar days                                                    -> repair: dropped
11. Any other bar dated on a weekend or exchange holiday             -> reject

A rejection names the offending rows (up to 20, plus a count per rule). ``strict=True`` raises
PriceValidationError for the whole table, so nothing is written. Otherwise each ticker with a rejected row
is quarantined: all its rows are held back (``ValidationReport.quarantine`` names the rows and rules) and
the other tickers pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnn_pipelines.trading.prices.calendar import TradingCalendar

import numpy as np
import pandas as pd

CANONICAL_COLUMNS = ["date", "ticker", "open", "high", "low", "close", "volume"]
PRICE_FIELDS = ["open", "high", "low", "close"]
BAND_TOLERANCE = 0.005
MAX_ROWS_IN_MESSAGE = 20


class PriceSchemaError(ValueError):
    """A price table (or file) does not have the canonical columns or types."""


class PriceValidationError(ValueError):
    """Rows violate a reject rule; ``violations`` holds them with the rule each broke."""

    def __init__(self, violations: pd.DataFrame) -> None:
        self.violations = violations
        counts = violations["rule"].value_counts().to_dict()
        shown = violations.head(MAX_ROWS_IN_MESSAGE).to_string(index=False)
        more = len(violations) - min(len(violations), MAX_ROWS_IN_MESSAGE)
        tail = f"\n... and {more} more" if more else ""
        super().__init__(
            f"{len(violations)} price rows rejected ({counts}); nothing was written:\n{shown}{tail}"
        )


@dataclass
class ValidationReport:
    """What validation repaired, for the asset's metadata."""

    rows_in: int = 0
    rows_out: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    quarantine: pd.DataFrame | None = None  # rule + canonical columns of every rejected row, by ticker

    @property
    def quarantined_tickers(self) -> list[str]:
        return [] if self.quarantine is None else sorted(self.quarantine["ticker"].astype(str).unique())


def coerce_schema(df: pd.DataFrame, source: str = "prices") -> pd.DataFrame:
    """Return the canonical columns with canonical dtypes, or raise PriceSchemaError naming the column."""
    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    if missing:
        raise PriceSchemaError(f"{source}: missing column(s) {missing}; found {list(df.columns)}")
    out = df[CANONICAL_COLUMNS].copy()
    try:
        out["date"] = pd.to_datetime(out["date"]).dt.tz_localize(None).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise PriceSchemaError(f"{source}: column 'date' is not parseable as dates ({exc})") from exc
    for col in ["open", "high", "low", "close", "volume"]:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & out[col].notna()
        if bad.any():
            examples = out.loc[bad, col].astype(str).head(3).tolist()
            raise PriceSchemaError(f"{source}: column '{col}' has non-numeric values, e.g. {examples}")
        out[col] = values.astype("float64")
    if out["ticker"].isna().any():
        raise PriceSchemaError(f"{source}: column 'ticker' has {int(out['ticker'].isna().sum())} empty values")
    out["ticker"] = out["ticker"].astype(str).str.strip().astype("string")
    out["date"] = out["date"].dt.date
    return out


def _rows(df: pd.DataFrame, mask: np.ndarray | pd.Series, rule: str) -> pd.DataFrame:
    bad = df.loc[np.asarray(mask), CANONICAL_COLUMNS].copy()
    bad.insert(0, "rule", rule)
    return bad


def drop_off_calendar_repeats(df: pd.DataFrame, calendar: TradingCalendar | None) -> tuple[pd.DataFrame, int]:
    """Rule 10: drop bars on non-sessions (weekends without a calendar) that repeat the ticker's previous bar."""
    if df.empty:
        return df, 0
    dates = pd.to_datetime(df["date"])
    off = ~calendar.is_session(dates) if calendar is not None else (dates.dt.dayofweek >= 5).to_numpy()
    if not off.any():
        return df, 0
    ordered = df.assign(_off=off).sort_values(["ticker", "date"], kind="stable")
    prev = ordered.groupby("ticker", sort=False)[["open", "high", "low", "close", "volume"]].shift(1)
    same = (ordered[PRICE_FIELDS] == prev[PRICE_FIELDS]).all(axis=1)
    vol_ok = (ordered["volume"] == prev["volume"]) | (ordered["volume"] == 0)
    repeat = ordered.index[ordered["_off"] & same & vol_ok]
    return df.drop(index=repeat), len(repeat)


def validate_prices(df: pd.DataFrame, source: str = "prices", calendar: TradingCalendar | None = None,
                    strict: bool = True) -> tuple[pd.DataFrame, ValidationReport]:
    """Apply the rules above; return the clean table sorted by (date, ticker) and what was repaired.

    ``calendar`` decides what a trading day is (None: every weekday). ``strict`` raises on any rejected row;
    otherwise the tickers with rejected rows are quarantined (left out, named in the report)."""
    report = ValidationReport(rows_in=len(df))
    out = coerce_schema(df, source)
    values = ["open", "high", "low", "close", "volume"]

    all_nan = out[values].isna().all(axis=1)
    report.repairs["dropped_empty_bars"] = int(all_nan.sum())
    out = out.loc[~all_nan]

    exact_dup = out.duplicated(keep="first")
    report.repairs["dropped_exact_duplicates"] = int(exact_dup.sum())
    out = out.loc[~exact_dup].reset_index(drop=True)

    out, repeats = drop_off_calendar_repeats(out, calendar)
    report.repairs["dropped_off_calendar_repeats"] = repeats
    out = out.reset_index(drop=True)

    problems: list[pd.DataFrame] = []
    key_dup = out.duplicated(["date", "ticker"], keep=False)
    problems.append(_rows(out, key_dup, "conflicting duplicate (date, ticker)"))

    nan_any = out[values].isna().any(axis=1)
    problems.append(_rows(out, nan_any, "NaN price or volume"))
    nonpos = (out[PRICE_FIELDS] <= 0).any(axis=1)
    problems.append(_rows(out, nonpos, "non-positive price"))
    problems.append(_rows(out, out["high"] < out["low"], "high < low"))

    hi = out[["open", "close"]].max(axis=1)
    lo = out[["open", "close"]].min(axis=1)
    above = (hi - out["high"]) / out["high"]
    below = (out["low"] - lo) / out["low"]
    outside_far = (above > BAND_TOLERANCE) | (below > BAND_TOLERANCE)
    problems.append(_rows(out, outside_far & ~nonpos & (out["high"] >= out["low"]), "open/close outside [low, high]"))
    problems.append(_rows(out, out["volume"] < 0, "negative volume"))
    day = pd.to_datetime(out["date"])
    if calendar is None:
        problems.append(_rows(out, day.dt.dayofweek >= 5, "dated on a weekend"))
    else:
        problems.append(_rows(out, ~calendar.is_session(day), f"dated on a non-trading day ({calendar.name})"))

    violations = pd.concat([p for p in problems if len(p)], ignore_index=True) if any(len(p) for p in problems) else None
    if violations is not None:
        violations = violations.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
        if strict:
            raise PriceValidationError(violations.sort_values(["date", "ticker"], kind="stable"))
        report.quarantine = violations
        out = out.loc[~out["ticker"].isin(set(violations["ticker"]))].reset_index(drop=True)
        hi, lo = out[["open", "close"]].max(axis=1), out[["open", "close"]].min(axis=1)

    widen_hi = hi > out["high"]
    widen_lo = lo < out["low"]
    report.repairs["widened_high_low"] = int((widen_hi | widen_lo).sum())
    out["high"] = np.maximum(out["high"], hi)
    out["low"] = np.minimum(out["low"], lo)

    out = out.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
    report.rows_out = len(out)
    return out, report
