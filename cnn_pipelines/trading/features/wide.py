"""Long price tables <-> wide (date x ticker) float64 arrays, with the gap rule used by every feature.

Gap rule: between a ticker's first and last bar, a missing bar is filled with the previous close
(open = high = low = close = previous close, volume = 0): no trade, price unchanged. Before the first and
after the last bar everything is NaN. Indicators therefore see each ticker's own history with no holes,
exactly what a per-ticker computation on the same filled series sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass
class WideBars:
    """Aligned (T x N) arrays; ``has_bar`` marks real (not gap-filled) bars."""

    dates: pd.DatetimeIndex
    tickers: pd.Index
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    has_bar: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape


def to_wide(prices: pd.DataFrame) -> WideBars:
    """Pivot the canonical long table to wide arrays over the dates that have any bar, applying the gap rule."""
    df = prices[["date", "ticker", *FIELDS]].copy()
    df["date"] = pd.to_datetime(df["date"])
    df["ticker"] = df["ticker"].astype(str)
    dates = pd.DatetimeIndex(np.sort(df["date"].unique()))
    tickers = pd.Index(np.sort(df["ticker"].unique()))
    r = dates.get_indexer(df["date"])
    c = tickers.get_indexer(df["ticker"])
    shape = (len(dates), len(tickers))
    arrays = {}
    for f in FIELDS:
        a = np.full(shape, np.nan)
        a[r, c] = df[f].to_numpy(dtype=np.float64)
        arrays[f] = a
    has_bar = ~np.isnan(arrays["close"])
    listed = listed_span(has_bar)
    close = ffill(arrays["close"])
    close[~listed] = np.nan
    gap = listed & ~has_bar
    for f in ("open", "high", "low"):
        arrays[f][gap] = close[gap]
        arrays[f][~listed] = np.nan
    arrays["volume"][gap] = 0.0
    arrays["close"] = close
    return WideBars(dates, tickers, arrays["open"], arrays["high"], arrays["low"], close, arrays["volume"], has_bar)


def listed_span(has_bar: np.ndarray) -> np.ndarray:
    """True between each column's first and last True (inclusive)."""
    seen_before = np.maximum.accumulate(has_bar, axis=0)
    seen_after = np.maximum.accumulate(has_bar[::-1], axis=0)[::-1]
    return seen_before & seen_after


def ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down each column."""
    mask = np.isnan(a)
    idx = np.where(~mask, np.arange(a.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[idx, np.arange(a.shape[1])[None, :]]
    return out


def shift(a: np.ndarray, k: int) -> np.ndarray:
    """Rows shifted down by k (k > 0: value from k rows earlier), NaN-padded."""
    out = np.full_like(a, np.nan)
    if k == 0:
        return a.copy()
    if k > 0:
        out[k:] = a[:-k]
    else:
        out[:k] = a[-k:]
    return out


def to_long(values: dict[str, np.ndarray], dates: pd.DatetimeIndex, tickers: pd.Index, mask: np.ndarray,
            dtype: str = "float32") -> pd.DataFrame:
    """Stack wide arrays into a long (date, ticker, *columns) table for the cells where ``mask`` holds."""
    rows, cols = np.nonzero(mask)
    out = {"date": dates[rows].date, "ticker": pd.array(np.asarray(tickers)[cols], dtype="string")}
    for name, arr in values.items():
        out[name] = arr[rows, cols].astype(dtype)
    return pd.DataFrame(out)
