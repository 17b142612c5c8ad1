"""Trading calendar shared by partitions and the synthetic market: weekdays less fixed-date holidays."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

# Fixed-date market holidays (month, day) observed when they fall on a weekday. Partitions still exist on
# these days (weekday partitions); they are simply empty, which downstream code must handle.
HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (7, 4), (12, 25))


def to_date(value: str | dt.date | pd.Timestamp) -> dt.date:
    """Coerce an ISO string, date or timestamp to a plain date."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def weekdays(start: str | dt.date, end: str | dt.date) -> pd.DatetimeIndex:
    """All Monday–Friday dates in [start, end]."""
    return pd.bdate_range(to_date(start), to_date(end), freq="B")


def is_holiday(days: pd.DatetimeIndex) -> np.ndarray:
    """Boolean mask of the fixed-date holidays in ``days``."""
    mask = np.zeros(len(days), dtype=bool)
    for month, day in HOLIDAYS:
        mask |= (days.month == month) & (days.day == day)
    return mask


def trading_days(start: str | dt.date, end: str | dt.date) -> pd.DatetimeIndex:
    """Weekdays in [start, end] on which the (synthetic) market is open."""
    days = weekdays(start, end)
    return days[~is_holiday(days)]
