"""Point-in-time universe: top-N tickers by trailing median dollar volume, known before the day it is used."""

from __future__ import annotations

import numpy as np
import pandas as pd


def trailing_median_dollar_volume(close: np.ndarray, volume: np.ndarray, has_bar: np.ndarray, window: int,
                                  min_obs: int) -> np.ndarray:
    """Median of close * volume over the ``window`` rows ending the row BEFORE each date (real bars only);
    NaN where fewer than ``min_obs`` bars fall in that window."""
    dv = np.where(has_bar, close * volume, np.nan)
    med = pd.DataFrame(dv).rolling(window, min_periods=min_obs).median().to_numpy()
    out = np.full_like(med, np.nan)
    out[1:] = med[:-1]  # ends the day before use
    return out


def top_n_members(score: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, membership of the ``n`` largest finite scores and their rank (1 = largest; 0 = not a member).

    Ties break by column order, so membership is deterministic.
    """
    T, N = score.shape
    filled = np.where(np.isfinite(score), score, -np.inf)
    order = np.argsort(-filled, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(T)[:, None], order] = np.arange(1, N + 1)[None, :]
    member = (ranks <= n) & np.isfinite(score)
    return member, np.where(member, ranks, 0)


def is_tradable(tickers, non_tradables=()) -> np.ndarray:
    """Whether each ticker may enter the universe: indices (a ``^`` prefix, as vendors write ^GSPC, ^IXIC) and
    the names listed in ``non_tradables`` never do."""
    listed = {str(t).strip().upper() for t in non_tradables}
    return np.array([not str(t).startswith("^") and str(t).strip().upper() not in listed for t in tickers], dtype=bool)


def idle_names(med: np.ndarray, tradable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(idle, no_volumes), T x N and T x 1: a tradable name whose trailing median dollar volume is 0 (volume 0 on
    half or more of its bars: a suspended stock whose vendor repeats the last close) is idle on a day when some
    other tradable name did trade; a day on which none did is a data set without volumes (FX rates, some futures
    files), where dollar volume cannot rank anyone and no name is idle."""
    ok = np.isfinite(med) if tradable is None else np.isfinite(med) & tradable[None, :]
    no_volumes = ~(ok & (med > 0)).any(axis=1, keepdims=True)
    return ok & (med == 0) & ~no_volumes, no_volumes


def universe_membership(close: np.ndarray, volume: np.ndarray, has_bar: np.ndarray, size: int, window: int,
                        min_obs: int, tradable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, rank, trailing median dollar volume), each T x N, using only data before each date. Columns
    that are not ``tradable`` (N booleans) are never members, nor are idle names (``idle_names``), however few
    tickers there are to fill the universe."""
    med = trailing_median_dollar_volume(close, volume, has_bar, window, min_obs)
    idle, _ = idle_names(med, tradable)
    ok = ~idle if tradable is None else ~idle & tradable[None, :]
    member, rank = top_n_members(np.where(ok, med, np.nan), size)
    return member, rank, med
