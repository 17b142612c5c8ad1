"""Corporate actions, point in time: bars are stored as the vendor reported them (unadjusted) with an
``adjustment`` per bar, and every reader adjusts as of the last day it reads.

``adjustment`` on day d is the factor by which every earlier price of the ticker is multiplied to be comparable
with d's bar (0.5 on the ex-date of a 2:1 split, 0.99 on a 1 % dividend, 1.0 on ordinary days); earlier volumes
are divided by it, so price x volume stays the dollar volume traded. It is derived when the bar is ingested,
from the same vendor snapshot's ``Adj Close`` / ``Close`` on d and on the ticker's previous bar, so it is known
on d and never changes afterwards: a lake built night by night and one backfilled in one go after a split hold
the same rows, and adjusting either as of a date gives the same prices (the way zipline's adjustment
database and qlib's factor field work).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.validation import CANONICAL_COLUMNS

STORED_COLUMNS = [*CANONICAL_COLUMNS, "adjustment"]
ADJUSTMENT_TOLERANCE = 1e-4  # |ratio - 1| below this (or below cent rounding) is rounding, not an action
ADJUSTMENT_LOOKBACK_DAYS = 45  # how far back a bar's previous bar may be for its ratio (calendar days)


def products_after(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For rows sorted by (group, date): the product of the same group's values strictly after each row (1.0 for
    a group's last row). The factor that brings a bar to the scale of the group's last one."""
    rev = pd.Series(np.asarray(values, dtype="float64")[::-1])
    keys = np.asarray(groups)[::-1]
    inclusive = rev.groupby(keys).cumprod()
    return inclusive.groupby(keys).shift(1, fill_value=1.0).to_numpy()[::-1]


def as_traded(df: pd.DataFrame) -> pd.DataFrame:
    """Bars as traded where the vendor writes the traded close beside a split-adjusted one (Sharadar's
    ``closeunadj``): open, high, low and close scaled by their ratio, volume divided by it. CRSP's ``PRC`` is the
    close without its sign (negative: no trade, the bid/ask midpoint), and ``CFACPR`` gives the adjusted close
    where no other column does."""
    if not {"crsp_prc", "cfacpr", "close_unadj"} & set(df.columns):
        return df
    out = df.copy()
    if "crsp_prc" in out.columns:
        out["close"] = pd.to_numeric(out.pop("crsp_prc"), errors="coerce").abs()
    if "cfacpr" in out.columns:
        factor = pd.to_numeric(out.pop("cfacpr"), errors="coerce")
        if "adj_close" not in out.columns:
            out["adj_close"] = pd.to_numeric(out["close"], errors="coerce") / factor.where(factor > 0)
    if "close_unadj" not in out.columns:
        return out
    ratio = pd.to_numeric(out.pop("close_unadj"), errors="coerce") / pd.to_numeric(out["close"], errors="coerce")
    ratio = ratio.where(np.isfinite(ratio) & (ratio > 0), 1.0)
    for col in ("open", "high", "low", "close"):
        out[col] = pd.to_numeric(out[col], errors="coerce") * ratio
    out["volume"] = pd.to_numeric(out["volume"], errors="coerce") / ratio
    return out


def unsplit(df: pd.DataFrame) -> pd.DataFrame:
    """Vendors that split-adjust Close retroactively (yfinance) report each split in a ``stock_splits`` column
    (2.0 for 2:1 on its ex-date): undo it, so open/high/low/close/volume are what traded that day. Others write
    the same column beside prices as traded (Quandl's EOD ``Split``, 1.0 on other days): there the close falls
    by the ratio on the ex-date, and that split is left as it is (undoing it doubled every earlier price). A
    missing ``adj_close`` is the close adjusted for every split. Expects one file's rows (all its history up to
    the snapshot) with parsed dates."""
    if "stock_splits" not in df.columns:
        return df
    out = df.sort_values(["ticker", "date"], kind="stable").copy()
    k = pd.to_numeric(out["stock_splits"], errors="coerce").fillna(0.0)
    k = k.where(k > 0, 1.0)
    groups = out["ticker"].to_numpy()
    close = pd.to_numeric(out["close"], errors="coerce")
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.log(close.groupby(groups).shift(1) / close)
        traded = (k != 1.0) & (np.abs(fall - np.log(k)) < np.abs(fall))  # the close already shows this split
    every = pd.Series(products_after(k.to_numpy(), groups), index=out.index)
    undo = pd.Series(products_after(k.where(~traded, 1.0).to_numpy(), groups), index=out.index)
    for col in ("open", "high", "low", "close"):
        out[col] = pd.to_numeric(out[col], errors="coerce") * undo
    out["volume"] = pd.to_numeric(out["volume"], errors="coerce") / undo
    if "adj_close" not in out.columns:
        out["adj_close"] = out["close"] / every  # splits are its only actions
    return out.drop(columns="stock_splits").loc[df.index]


def adjustment_ratios(fetched: pd.DataFrame, valid: pd.DataFrame | None = None) -> pd.DataFrame:
    """(date, ticker, adjustment) for the bars of a fetch that carries ``adj_close``: the vendor's adjustment
    factor (Adj Close / Close) on the ticker's previous usable bar divided by the factor on this bar.

    Only bars in ``valid`` (date, ticker; the bars validation lets through) take part, so an action whose
    ex-date bar was rejected lands on the next stored bar instead of being lost. The previous bar must lie
    within ADJUSTMENT_LOOKBACK_DAYS (the fetch's context), so a nightly run and a backfill see the same one.
    A ratio within the rounding of the vendor's prices (cents) is 1.0. Other bars get no row (1.0)."""
    empty = pd.DataFrame({"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string"),
                          "adjustment": pd.Series([], dtype="float64")})
    if not len(fetched) or "adj_close" not in fetched.columns:
        return empty
    f = fetched[["date", "ticker", "close", "adj_close"]].copy()
    f["ticker"] = f["ticker"].astype(str).str.strip()
    f["date"] = pd.to_datetime(f["date"]).dt.date
    f["close"] = pd.to_numeric(f["close"], errors="coerce")
    f["adj_close"] = pd.to_numeric(f["adj_close"], errors="coerce")
    f["factor"] = f["adj_close"] / f["close"]
    f = f.sort_values(["ticker", "date", "factor"], kind="stable").drop_duplicates(["ticker", "date"])
    if valid is not None:
        keys = pd.MultiIndex.from_arrays([pd.Index(valid["date"]), pd.Index(valid["ticker"].astype(str))])
        f = f.loc[pd.MultiIndex.from_arrays([pd.Index(f["date"]), pd.Index(f["ticker"])]).isin(keys)]
    f = f.loc[np.isfinite(f["factor"]) & (f["factor"] > 0) & (f["close"] > 0) & (f["adj_close"] > 0)]
    if not len(f):
        return empty
    prev = f.groupby("ticker")[["factor", "close", "adj_close", "date"]].shift(1)
    gap = pd.to_datetime(f["date"]) - pd.to_datetime(prev["date"])
    ratio = (prev["factor"] / f["factor"]).to_numpy(dtype=float)
    noise = 0.005 * (1 / f["close"] + 1 / f["adj_close"] + 1 / prev["close"] + 1 / prev["adj_close"])
    tol = np.maximum(ADJUSTMENT_TOLERANCE, noise.to_numpy(dtype=float))
    use = np.isfinite(ratio) & (gap <= pd.Timedelta(days=ADJUSTMENT_LOOKBACK_DAYS)).to_numpy() & (np.abs(ratio - 1) >= tol)
    return pd.DataFrame({"date": f["date"].to_numpy(), "ticker": f["ticker"].astype("string").to_numpy(),
                         "adjustment": np.where(use, ratio, 1.0)})


def with_adjustments(clean: pd.DataFrame, ratios: pd.DataFrame) -> pd.DataFrame:
    """``clean`` (canonical columns) with its ``adjustment`` column (1.0 where no ratio is known)."""
    out = clean[CANONICAL_COLUMNS].copy()
    if len(ratios) and len(out):
        key = pd.MultiIndex.from_arrays([pd.Index(ratios["date"]), pd.Index(ratios["ticker"].astype(str))])
        lookup = pd.Series(ratios["adjustment"].to_numpy(), index=key)
        rows = pd.MultiIndex.from_arrays([pd.Index(out["date"]), pd.Index(out["ticker"].astype(str))])
        out["adjustment"] = lookup.reindex(rows).fillna(1.0).to_numpy(dtype="float64")
    else:
        out["adjustment"] = np.ones(len(out), dtype="float64")
    return out


def adjust_as_of(prices: pd.DataFrame) -> pd.DataFrame:
    """Canonical bars adjusted as of the last day in ``prices``: each bar scaled by the adjustments of the same
    ticker's later bars in the table (volume inversely). A table without ``adjustment`` is returned as is."""
    if "adjustment" not in prices.columns:
        return prices
    out = prices.drop(columns="adjustment")
    if not len(prices):
        return out
    order = np.lexsort((pd.to_datetime(prices["date"]).to_numpy(), prices["ticker"].astype(str).to_numpy()))
    adj = np.nan_to_num(prices["adjustment"].to_numpy(dtype="float64"), nan=1.0)[order]  # older lakes: none
    tick = prices["ticker"].astype(str).to_numpy()[order]
    if np.all(adj == 1.0):
        return out
    scale = np.empty(len(prices))
    scale[order] = products_after(adj, tick)
    out = out.copy()
    for col in ("open", "high", "low", "close"):
        out[col] = out[col].to_numpy() * scale
    out["volume"] = out["volume"].to_numpy() / scale
    return out
