"""Trading calendars: what a session is, and counting sessions forward and back from any day.

Every purge, horizon and trade date is counted with ``offset``; an off-by-one here moves labels into
training windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.prices import calendar as cal_mod
from cnn_pipelines.trading.prices.calendar import (TradingCalendar, is_holiday, to_date, trading_calendar,
                                                   trading_days, weekdays)



@pytest.fixture
def syn() -> TradingCalendar:
    """Built in each test (not the cached one), so the test exercises the constructor too."""
    return TradingCalendar("synthetic")


def test_to_date_accepts_strings_dates_datetimes_and_timestamps():
    want = dt.date(2020, 3, 4)
    assert to_date("2020-03-04") == want
    assert to_date("2020-03-04T23:59:00") == want
    assert to_date(dt.datetime(2020, 3, 4, 23, 59)) == want
    assert to_date(pd.Timestamp("2020-03-04 23:59")) == want
    assert to_date(want) is want
    assert type(to_date(pd.Timestamp("2020-03-04"))) is dt.date
    assert type(to_date(dt.datetime(2020, 3, 4))) is dt.date


def test_weekdays_are_inclusive_and_skip_weekends():
    days = weekdays("2020-01-03", "2020-01-06")  # Friday .. Monday
    assert list(days.date) == [dt.date(2020, 1, 3), dt.date(2020, 1, 6)]


def test_synthetic_holidays_fall_on_fixed_dates_only_on_weekdays():
    days = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-07-04", "2019-07-04", "2020-12-25", "2020-12-24"])
    assert is_holiday(days).tolist() == [True, False, True, True, True, False]
    t = trading_days("2019-12-23", "2020-01-03")
    assert dt.date(2019, 12, 25) not in t.date and dt.date(2020, 1, 1) not in t.date
    assert dt.date(2019, 12, 24) in t.date and len(t) == 8


def test_sessions_in_a_range_are_inclusive(syn):
    s = syn.sessions("2020-06-30", "2020-07-06")
    assert list(s.date) == [dt.date(2020, 6, 30), dt.date(2020, 7, 1), dt.date(2020, 7, 2), dt.date(2020, 7, 3),
                            dt.date(2020, 7, 6)]
    assert len(syn.sessions("2020-07-04", "2020-07-05")) == 0


def test_is_session_ignores_the_time_of_day(syn):
    got = syn.is_session([pd.Timestamp("2020-07-03 16:00"), pd.Timestamp("2020-07-04"), dt.date(2020, 12, 25),
                          pd.Timestamp("2020-12-24 09:30")])
    assert got.tolist() == [True, False, False, True]
    assert isinstance(got, np.ndarray)


def test_offset_counts_sessions_from_sessions_and_from_closed_days(syn):
    assert syn.offset("2020-07-02", 1) == dt.date(2020, 7, 3)
    assert syn.offset("2020-07-02", 2) == dt.date(2020, 7, 6)
    assert syn.offset("2020-07-06", -1) == dt.date(2020, 7, 3)
    assert syn.offset("2020-07-06", -2) == dt.date(2020, 7, 2)
    # from a weekend: +1 is the first session after it, -1 the last one before it
    assert syn.offset("2020-07-04", 1) == dt.date(2020, 7, 6)
    assert syn.offset("2020-07-04", -1) == dt.date(2020, 7, 3)
    assert syn.next_session("2020-12-24") == dt.date(2020, 12, 28)


def test_offset_beyond_the_calendar_names_the_day(syn):
    first = syn._sessions[0].date()
    assert syn.offset(first, 0 + 1) == syn._sessions[1].date()
    with pytest.raises(ValueError, match=r"no session -1 from"):
        syn.offset(first, -1)
    last = syn._sessions[-1].date()
    with pytest.raises(ValueError, match=r"no session \+1 from"):
        syn.offset(last, 1)
    assert syn.offset(last, -1) == syn._sessions[-2].date()


@settings(max_examples=60, deadline=None)
@given(day=st.dates(dt.date(2000, 1, 1), dt.date(2027, 12, 31)), n=st.integers(1, 30))
def test_offset_is_the_nth_session_strictly_after_or_before(day, n):
    syn = trading_calendar("synthetic")  # the cached one: the constructor is tested above
    ahead = syn.offset(day, n)
    assert ahead > day and len(syn.sessions(day + dt.timedelta(days=1), ahead)) == n and syn.is_session([ahead])[0]
    back = syn.offset(day, -n)
    assert back < day and len(syn.sessions(back, day - dt.timedelta(days=1))) == n and syn.is_session([back])[0]


def test_an_exchange_calendar_has_its_closures_and_time_zone():
    nyse = TradingCalendar("XNYS")
    assert not nyse.is_session(["2018-12-05"])[0]          # national day of mourning
    assert nyse.is_session(["2018-12-04"])[0]
    assert nyse.offset("2018-12-04", 1) == dt.date(2018, 12, 6)
    assert nyse.timezone == "America/New_York" and TradingCalendar("synthetic").timezone == "America/New_York"
    assert trading_calendar("XLON").timezone == "Europe/London"
    assert repr(nyse) == "TradingCalendar('XNYS')"


def test_beyond_the_published_exchange_calendar_every_weekday_is_a_session():
    nyse = TradingCalendar("XNYS")
    far = pd.bdate_range(dt.date.today() + dt.timedelta(days=500), periods=10)
    assert nyse.is_session(far).all()


def test_exchange_calendars_start_no_earlier_than_they_are_defined():
    assert cal_mod._calendar_start("XNYS") == "1990-01-02"
    assert cal_mod._calendar_start("XTKS") > "1990-01-02"
    assert trading_calendar("XTKS").sessions("1990-01-01", "2030-01-01")[0] >= pd.Timestamp(cal_mod._calendar_start("XTKS"))


def test_unknown_exchange_is_refused_with_examples():
    with pytest.raises(ValueError, match="unknown exchange calendar 'NOPE'.*XNYS"):
        TradingCalendar("NOPE")


def test_calendars_are_built_once():
    assert trading_calendar("synthetic") is trading_calendar("synthetic")


def test_the_synthetic_calendar_reaches_two_years_ahead(syn):
    ahead = pd.bdate_range(dt.date.today() + dt.timedelta(days=700), periods=5)
    assert syn.is_session(ahead[~is_holiday(ahead)]).all()
    assert syn._sessions[0] == pd.Timestamp("1990-01-02")


def test_the_first_session_is_reachable_from_the_day_before(syn):
    first = syn._sessions[0].date()
    assert syn.offset(first - dt.timedelta(days=1), 1) == first
    assert syn.offset(syn._sessions[1].date(), -1) == first


def test_an_exchange_calendar_runs_from_1990_and_continues_without_a_gap_or_a_repeat():
    nyse = TradingCalendar("XNYS")
    assert len(nyse.sessions("1990-01-01", "1990-12-31")) > 240
    s = nyse._sessions
    assert s.is_unique and s.is_monotonic_increasing
    import exchange_calendars as xcals

    published_end = pd.Timestamp(xcals.get_calendar("XNYS", start="2020-01-01").sessions[-1]).tz_localize(None)
    next_weekday = pd.bdate_range(published_end + pd.Timedelta(days=1), periods=1)[0]
    assert nyse.is_session([next_weekday])[0]
    assert nyse.offset(published_end.date(), 1) == next_weekday.date()
