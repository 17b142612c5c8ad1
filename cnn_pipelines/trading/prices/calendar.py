"""Trading calendars: the synthetic market's simple one, and real exchanges' (``exchange_calendars``).

A real price source is read against its exchange's sessions (NYSE, ``XNYS``, by default): what counts as a
trading day for validation, forward-return horizons, walk-forward purges and the trade date of a signal.
The synthetic market keeps its own calendar: weekdays less three fixed-date holidays.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd

# Fixed-date holidays (month, day) of the synthetic market, observed when they fall on a weekday.
HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (7, 4), (12, 25))
SYNTHETIC = "synthetic"
DEFAULT_EXCHANGE = "XNYS"
_FIRST = "1990-01-02"


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
    """Boolean mask of the synthetic market's fixed-date holidays in ``days``."""
    mask = np.zeros(len(days), dtype=bool)
    for month, day in HOLIDAYS:
        mask |= (days.month == month) & (days.day == day)
    return mask


def trading_days(start: str | dt.date, end: str | dt.date) -> pd.DatetimeIndex:
    """Weekdays in [start, end] on which the synthetic market is open."""
    days = weekdays(start, end)
    return days[~is_holiday(days)]


def _calendar_start(name: str) -> str:
    """1990, or the exchange calendar's own earliest date where it starts later (XTKS: 1997)."""
    import exchange_calendars as xcals

    dispatcher = xcals.calendar_utils.global_calendar_dispatcher
    try:
        bound = dispatcher._calendar_factories[dispatcher.resolve_alias(name)].bound_min()
    except (KeyError, AttributeError):
        return _FIRST
    return max(_FIRST, str(bound.date())) if bound is not None else _FIRST


class TradingCalendar:
    """Sessions of one calendar (``synthetic`` or an exchange code such as ``XNYS``), as a sorted index.

    Beyond the exchange calendar's published range (it ends about a year ahead) every weekday counts as a
    session, so partitions and plans near the live edge still have a next day.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        if name == SYNTHETIC:
            self._sessions = trading_days(_FIRST, dt.date.today() + dt.timedelta(days=800))
        else:
            import exchange_calendars as xcals

            try:
                cal = xcals.get_calendar(name, start=_calendar_start(name))
            except xcals.errors.InvalidCalendarName as exc:
                raise ValueError(f"unknown exchange calendar {name!r} (CNN_EXCHANGE); e.g. XNYS, XNAS, XLON, "
                                 f"XTKS, CMES") from exc
            known = pd.DatetimeIndex(cal.sessions).tz_localize(None)
            later = weekdays(known[-1] + pd.Timedelta(days=1), dt.date.today() + dt.timedelta(days=800))
            self._sessions = known.append(later)

    @property
    def timezone(self) -> str:
        """The exchange's time zone (vendor timestamps are dated in it); New York for the synthetic market."""
        if self.name == SYNTHETIC:
            return "America/New_York"
        import exchange_calendars as xcals

        return str(xcals.get_calendar(self.name, start=_calendar_start(self.name)).tz)

    def __repr__(self) -> str:
        return f"TradingCalendar({self.name!r})"

    def sessions(self, start: str | dt.date, end: str | dt.date) -> pd.DatetimeIndex:
        """Sessions in [start, end]."""
        s = self._sessions
        return s[s.searchsorted(pd.Timestamp(to_date(start))): s.searchsorted(pd.Timestamp(to_date(end)), "right")]

    def is_session(self, dates) -> np.ndarray:
        """Whether each date is a session."""
        d = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
        return np.asarray(d.isin(self._sessions))

    def offset(self, day: str | dt.date, n: int) -> dt.date:
        """The session ``n`` sessions after ``day`` (before it for n < 0). ``day`` need not be a session:
        n = 1 is the first session after it, n = -1 the last one before it."""
        t = pd.Timestamp(to_date(day))
        i = self._sessions.searchsorted(t, "right") if n > 0 else self._sessions.searchsorted(t, "left")
        j = i + n - 1 if n > 0 else i + n
        if not 0 <= j < len(self._sessions):
            raise ValueError(f"{self.name}: no session {n:+d} from {day}")
        return self._sessions[j].date()

    def next_session(self, day: str | dt.date) -> dt.date:
        return self.offset(day, 1)

    @functools.lru_cache(maxsize=32)
    def weekdays_spanning(self, n: int) -> int:
        """The most weekdays that ``n`` consecutive sessions of this calendar span, anywhere in its history: a
        window of that many weekday partitions holds at least ``n`` sessions wherever it ends on a session.
        (252 sessions: up to 266 weekdays on NYSE since 1990, the week of 9/11 included; 255 on the synthetic market.)"""
        if n <= 1:
            return max(n, 0)
        days = self._sessions.to_numpy().astype("datetime64[D]")
        ordinal = np.busday_count(days[0], days)  # each session's weekday number
        if len(ordinal) < n:
            return n
        return int((ordinal[n - 1:] - ordinal[: len(ordinal) - n + 1]).max() + 1)


@functools.lru_cache(maxsize=8)
def trading_calendar(name: str = SYNTHETIC) -> TradingCalendar:
    """The calendar called ``name`` (cached: exchange calendars take a moment to build)."""
    return TradingCalendar(name)
