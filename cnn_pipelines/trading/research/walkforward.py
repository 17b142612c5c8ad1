"""Walk-forward folds: a monthly test period, its purged trailing training window and validation slice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import TradingCalendar, to_date
from cnn_pipelines.trading.settings import ResearchSettings


@dataclass(frozen=True)
class Fold:
    """Dates that define one walk-forward period. Every label used for fitting is realized before ``cutoff``."""

    period: str            # partition key, first day of the test month
    test_start: dt.date
    test_end: dt.date
    cutoff: dt.date        # test_start minus the purge gap: nothing fitted sees data dated on/after it
    train_start: dt.date
    val_start: dt.date


def fold_for(period: str, s: ResearchSettings, calendar: TradingCalendar) -> Fold:
    """The fold of test month ``period``: its cutoff lies ``s.purge_days`` sessions before the month starts."""
    start = pd.Timestamp(to_date(period))
    if start.day != 1:
        raise ValueError(f"period {period!r} must be the first day of a month")
    end = start + pd.offsets.MonthEnd(0)
    cutoff = pd.Timestamp(calendar.offset(start, -s.purge_days))
    train_start = start - pd.DateOffset(months=s.train_months)
    val_start = start - pd.DateOffset(months=s.val_months)
    return Fold(period, start.date(), end.date(), cutoff.date(), train_start.date(), val_start.date())


def realization_dates(dates: pd.Series, trading_days: pd.DatetimeIndex, horizon: int) -> np.ndarray:
    """Date on which a label dated ``d`` with the given horizon is known: the h-th trading day after d
    (NaT when beyond the calendar)."""
    d = pd.to_datetime(dates).to_numpy()
    idx = trading_days.searchsorted(d) + horizon
    out = np.full(len(d), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = idx < len(trading_days)
    out[ok] = trading_days.to_numpy()[idx[ok]]
    return out


def split_masks(dates: pd.Series, trading_days: pd.DatetimeIndex, fold: Fold, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) masks over samples dated ``dates``.

    Train: dated in [train_start, val_start) with the label realized before val_start (purged from
    validation). Validation: dated on/after val_start with the label realized before the cutoff.
    """
    d = pd.to_datetime(dates).to_numpy()
    real = realization_dates(dates, trading_days, horizon)
    known = ~np.isnat(real)
    ts, vs, cut = (np.datetime64(pd.Timestamp(x)) for x in (fold.train_start, fold.val_start, fold.cutoff))
    train = (d >= ts) & (d < vs) & known & (real < vs)
    val = (d >= vs) & known & (real < cut)
    return train, val


def test_mask(dates: pd.Series, fold: Fold) -> np.ndarray:
    d = pd.to_datetime(dates)
    return ((d >= pd.Timestamp(fold.test_start)) & (d <= pd.Timestamp(fold.test_end))).to_numpy()
