"""Validation of canonical price tables before anything is written to the lake.

Rules (applied in this order; ``repair`` rules fix rows and are counted, ``reject`` rules raise):

1. Missing columns or unparseable types                              -> reject (PriceSchemaError)
2. Rows whose open/high/low/close/volume are *all* NaN               -> repair: dropped (no bar that day;
   yfinance emits such rows for tickers that did not trade)
3. Duplicate (date, ticker) rows whose values agree to a relative ``DUPLICATE_RTOL`` (the same bar in
   ``MSFT.csv`` and ``msft.parquet``, or a float round trip)         -> repair: one kept
4. Duplicate (date, ticker) rows that disagree                       -> reject, naming the files of both
5. Any remaining NaN price or volume, or a price <= 0                -> reject
6. high < low                                                        -> reject
7. open/close outside [low, high] by at most ``BAND_TOLERANCE`` (relative; rounding in vendor data)
                                                                     -> repair: high/low widened to include it
8. open/close outside [low, high] by more than that                  -> reject
9. volume < 0                                                        -> reject
10. Bars dated on a non-session (weekend, holiday, or an unscheduled closure such as 2018-12-05) that are
    stale: the ticker's previous bar (at most ``STALE_LOOKBACK_DAYS`` earlier) repeated, or a flat bar at
    its close, with volume 0 or unchanged (a vendor forward-filling calendar days) -> repair: dropped
11. Any other bar dated on a non-session                             -> reject

Every rule looks at one (date, ticker) and at most ``STALE_LOOKBACK_DAYS`` before it, so validating a range
gives the same rows as validating it day by day (with the same look-back context). A rejection names the
offending rows (up to 20, plus a count per rule). ``strict=True`` raises PriceValidationError for the whole
table, so nothing is written. Otherwise the rejected **days** of a ticker are quarantined
(``ValidationReport.quarantine`` names each row and its rule) and its other days, and every other ticker, pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnn_pipelines.trading.prices.calendar import TradingCalendar

import numpy as np
import pandas as pd

CANONICAL_COLUMNS = ["date", "ticker", "open", "high", "low", "close", "volume"]
PRICE_FIELDS = ["open", "high", "low", "close"]
BAND_TOLERANCE = 0.005
DUPLICATE_RTOL = 1e-9        # duplicates closer than this (relative) are the same bar
STALE_LOOKBACK_DAYS = 10     # how far back a non-session bar's 'previous bar' may be (calendar days)
VALUES = ["open", "high", "low", "close", "volume"]
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

    @property
    def quarantined_days(self) -> int:
        """(date, ticker) pairs held back."""
        return 0 if self.quarantine is None else len(self.quarantine[["date", "ticker"]].drop_duplicates())


def coerce_schema(df: pd.DataFrame, source: str = "prices") -> pd.DataFrame:
    """Return the canonical columns with canonical dtypes, or raise PriceSchemaError naming the column."""
    from cnn_pipelines.trading.prices.dates import session_dates

    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    if missing:
        raise PriceSchemaError(f"{source}: missing column(s) {missing}; found {list(df.columns)}")
    out = df[CANONICAL_COLUMNS].copy()
    out["date"] = session_dates(out["date"], source=source)
    if out["date"].isna().any():
        raise PriceSchemaError(f"{source}: column 'date' has {int(out['date'].isna().sum())} empty values")
    for col in VALUES:
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


def _rows(df: pd.DataFrame, mask: np.ndarray | pd.Series, rule: str | pd.Series) -> pd.DataFrame:
    bad = df.loc[np.asarray(mask), CANONICAL_COLUMNS].copy()
    bad.insert(0, "rule", rule if isinstance(rule, str) else rule[np.asarray(mask)].to_numpy())
    return bad


def collapse_duplicates(df: pd.DataFrame, files: pd.Series | None = None) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """Rules 3-4: duplicate (date, ticker) rows that agree to DUPLICATE_RTOL become one row (the smallest by
    value, so neither file order nor row order decides); those that disagree are returned as violations
    naming the files they came from (``files``, aligned with ``df``'s index, where known)."""
    key = ["date", "ticker"]
    dup = df.duplicated(key, keep=False)
    if not dup.any():
        return df, 0, df.iloc[:0].assign(rule="")[["rule", *CANONICAL_COLUMNS]]
    group = df.loc[dup].sort_values([*key, *VALUES], kind="stable", na_position="last")
    gid = group.groupby(key, sort=False).ngroup().to_numpy()
    first = group.groupby(key, sort=False).cumcount().to_numpy() == 0
    ref = group[VALUES].to_numpy()[first][gid]
    same = np.isclose(group[VALUES].to_numpy(), ref, rtol=DUPLICATE_RTOL, atol=0.0, equal_nan=True).all(axis=1)
    conflict_gid = np.unique(gid[~same])
    conflict = np.isin(gid, conflict_gid)
    if files is not None:
        names = files.reindex(group.index).astype("string").fillna("?")
        listed = names.groupby(gid).agg(lambda f: ", ".join(sorted(set(f)))).reindex(gid).to_numpy()
        rule = pd.Series(["conflicting duplicate (date, ticker) in " + f for f in listed], index=group.index)
    else:
        rule = pd.Series("conflicting duplicate (date, ticker)", index=group.index)
    violations = _rows(group, conflict, rule)
    drop = group.index[~first & ~conflict]
    return df.drop(index=drop), len(drop), violations


def stale_off_session_bars(df: pd.DataFrame, off: np.ndarray) -> np.ndarray:
    """Rule 10: rows on non-sessions (``off``) that repeat the ticker's previous bar (at most
    STALE_LOOKBACK_DAYS earlier) or sit flat at its close, with volume 0 or unchanged."""
    if not off.any():
        return np.zeros(len(df), dtype=bool)
    ordered = df.assign(_off=off, _day=pd.to_datetime(df["date"])).sort_values(["ticker", "_day"], kind="stable")
    prev = ordered.groupby("ticker", sort=False)[[*VALUES, "_day"]].shift(1)
    recent = (ordered["_day"] - prev["_day"]) <= pd.Timedelta(days=STALE_LOOKBACK_DAYS)
    close = lambda a, b: np.isclose(a, b, rtol=DUPLICATE_RTOL, atol=0.0)  # noqa: E731
    repeat = np.all([close(ordered[c], prev[c]) for c in PRICE_FIELDS], axis=0)
    flat = np.all([close(ordered[c], prev["close"]) for c in PRICE_FIELDS], axis=0)
    vol_ok = close(ordered["volume"], prev["volume"]) | (ordered["volume"] == 0)
    stale = pd.Series(ordered["_off"] & recent & (repeat | flat) & vol_ok, index=ordered.index)
    return stale.reindex(df.index).to_numpy(dtype=bool)


def off_session(df: pd.DataFrame, calendar: TradingCalendar | None) -> np.ndarray:
    """Rows not dated on a session (weekends where no calendar is given)."""
    dates = pd.to_datetime(df["date"])
    return ~calendar.is_session(dates) if calendar is not None else (dates.dt.dayofweek >= 5).to_numpy()


def validate_prices(df: pd.DataFrame, source: str = "prices", calendar: TradingCalendar | None = None,
                    strict: bool = True, window: tuple | None = None) -> tuple[pd.DataFrame, ValidationReport]:
    """Apply the rules above; return the clean table sorted by (date, ticker) and what was repaired.

    ``calendar`` decides what a trading day is (None: every weekday). ``strict`` raises on any rejected row;
    otherwise the rejected (date, ticker) rows are quarantined (left out, named in the report). ``window``
    (first, last date): rows before it are context for rule 10 only; only the window's rows are returned,
    counted and judged. A ``source_file`` column, where present, names the files in conflict messages."""
    df = df.reset_index(drop=True)
    files = df["source_file"] if "source_file" in df.columns else None
    out = coerce_schema(df, source)
    if window is not None:
        lo, hi = (pd.Timestamp(w).date() for w in window)
        out = out.loc[out["date"] <= hi]
    in_window = (lambda d: d["date"] >= lo) if window is not None else (lambda d: np.ones(len(d), dtype=bool))
    report = ValidationReport(rows_in=int(np.sum(in_window(out))))

    all_nan = out[VALUES].isna().all(axis=1)
    report.repairs["dropped_empty_bars"] = int((all_nan & in_window(out)).sum())
    out = out.loc[~all_nan]

    out, n_dupes, conflicts = collapse_duplicates(out, files)
    report.repairs["dropped_exact_duplicates"] = n_dupes  # identical within DUPLICATE_RTOL

    off = off_session(out, calendar)
    stale = stale_off_session_bars(out, off)
    report.repairs["dropped_off_calendar_repeats"] = int((stale & in_window(out)).sum())
    out, off = out.loc[~stale], off[~stale]
    if window is not None:
        keep = np.asarray(in_window(out))
        out, off = out.loc[keep], off[keep]
        conflicts = conflicts.loc[np.asarray(in_window(conflicts))]
    out = out.reset_index(drop=True)

    problems: list[pd.DataFrame] = [conflicts]
    problems.append(_rows(out, out[VALUES].isna().any(axis=1), "NaN price or volume"))
    nonpos = (out[PRICE_FIELDS] <= 0).any(axis=1)
    problems.append(_rows(out, nonpos, "non-positive price"))
    problems.append(_rows(out, out["high"] < out["low"], "high < low"))
    hi = out[["open", "close"]].max(axis=1)
    lo_ = out[["open", "close"]].min(axis=1)
    outside_far = ((hi - out["high"]) / out["high"] > BAND_TOLERANCE) | ((out["low"] - lo_) / out["low"] > BAND_TOLERANCE)
    problems.append(_rows(out, outside_far & ~nonpos & (out["high"] >= out["low"]), "open/close outside [low, high]"))
    problems.append(_rows(out, out["volume"] < 0, "negative volume"))
    problems.append(_rows(out, off, "dated on a weekend" if calendar is None
                          else f"dated on a non-trading day ({calendar.name})"))

    problems = [p for p in problems if len(p)]
    if problems:
        violations = pd.concat(problems, ignore_index=True).sort_values(["ticker", "date"], kind="stable")
        violations = violations.reset_index(drop=True)
        if strict:
            raise PriceValidationError(violations.sort_values(["date", "ticker"], kind="stable"))
        report.quarantine = violations
        held = pd.MultiIndex.from_frame(violations[["date", "ticker"]].astype({"ticker": "string"}))
        rows = pd.MultiIndex.from_frame(out[["date", "ticker"]])
        out = out.loc[~rows.isin(held)].reset_index(drop=True)

    hi, lo_ = out[["open", "close"]].max(axis=1), out[["open", "close"]].min(axis=1)
    report.repairs["widened_high_low"] = int(((hi > out["high"]) | (lo_ < out["low"])).sum())
    out["high"] = np.maximum(out["high"], hi)
    out["low"] = np.minimum(out["low"], lo_)

    out = out.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
    report.rows_out = len(out)
    return out, report
