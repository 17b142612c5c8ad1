"""Vendor dates to exchange session dates (prices/dates.py), over generated dates, zones and layouts.

Before issue 27, offsets that change with daylight saving failed the whole batch (AttributeError on .dt,
naming no file) and dd.mm.yyyy files were read day-first or month-first depending on their first row.
"""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.prices.dates import AmbiguousDatesError, session_dates
from cnn_pipelines.trading.prices.sources import read_price_files
from cnn_pipelines.trading.prices.validation import PriceSchemaError

DAYS = st.dates(min_value=dt.date(1999, 1, 1), max_value=dt.date(2030, 12, 31))
ZONES = ["America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]


@settings(max_examples=60, deadline=None)
@given(days=st.lists(DAYS, min_size=1, max_size=30), zone=st.sampled_from(ZONES),
       minutes=st.integers(9 * 60, 17 * 60), shown_in=st.sampled_from(["local", "utc", "Z", "+01:00"]))
def test_stamped_times_map_to_the_exchange_local_date(days, zone, minutes, shown_in):
    """A bar stamped during the exchange's day, written in any offset (fixed, following DST, Z), is dated on
    the exchange's local date."""
    local = pd.DatetimeIndex(days).tz_localize(zone) + pd.Timedelta(minutes=minutes)
    if shown_in == "local":
        text = [t.isoformat() for t in local]
    elif shown_in == "utc":
        text = [t.tz_convert("UTC").isoformat() for t in local]
    elif shown_in == "Z":
        text = [t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ") for t in local]
    else:
        text = [t.tz_convert("Etc/GMT-1").strftime("%Y-%m-%d %H:%M:%S+01:00") for t in local]
    got = session_dates(pd.Series(text), tz=zone)
    assert [d.date() for d in got] == days
    # the same instants as a tz-aware datetime column (Parquet) give the same dates
    aware = session_dates(pd.Series(local.tz_convert("UTC")), tz=zone)
    assert [d.date() for d in aware] == days


@settings(max_examples=40, deadline=None)
@given(days=st.lists(DAYS, min_size=1, max_size=30))
def test_midnight_labels_keep_their_date_in_any_offset(days):
    """``2020-01-02T00:00:00Z`` labels the bar of 2020-01-02 (not New York's evening before)."""
    for fmt in ("%Y-%m-%dT00:00:00Z", "%Y-%m-%d 00:00:00+00:00", "%Y-%m-%d 00:00:00-05:00"):
        got = session_dates(pd.Series([d.strftime(fmt) for d in days]))
        assert [d.date() for d in got] == days


@settings(max_examples=80, deadline=None)
@given(days=st.lists(DAYS, min_size=1, max_size=40), sep=st.sampled_from(["/", ".", "-"]),
       order=st.sampled_from(["dayfirst", "monthfirst"]), setting=st.sampled_from([None, "dayfirst", "monthfirst"]),
       seed=st.integers(0, 100))
def test_numeric_dates_are_decided_from_all_rows_never_the_first(days, sep, order, setting, seed):
    """Day-first or month-first follows the file's evidence whatever the row order; a file with no evidence
    takes the setting, or is refused naming it."""
    fmt = f"%d{sep}%m{sep}%Y" if order == "dayfirst" else f"%m{sep}%d{sep}%Y"
    text = pd.Series([d.strftime(fmt) for d in days]).sample(frac=1, random_state=seed).reset_index(drop=True)
    truth = [dt.datetime.strptime(t, fmt).date() for t in text]
    evidence = any(d.day > 12 for d in days)
    if evidence or setting == order:
        assert [d.date() for d in session_dates(text, date_order=setting)] == truth
    elif setting is None:
        with pytest.raises(AmbiguousDatesError, match="date_order: dayfirst or monthfirst"):
            session_dates(text, date_order=setting)
    else:  # the setting was wrong for a file that gives no evidence: read the way the user said
        assert [d.date() for d in session_dates(text, date_order=setting)] != truth or all(d.day == d.month for d in days)


def test_a_file_mixing_both_orders_or_impossible_dates_is_refused_naming_rows():
    with pytest.raises(PriceSchemaError, match="mix day-first and month-first"):
        session_dates(pd.Series(["13.01.2020", "01.13.2020"]))
    with pytest.raises(PriceSchemaError, match="impossible dates.*2020-02-30"):
        session_dates(pd.Series(["2020-02-28", "2020-02-30"]))


def test_an_ambiguous_file_is_quarantined_with_the_setting_to_use(tmp_path):
    """The file source reads the other files and names the setting for the ambiguous one."""
    bars = "Date,Open,High,Low,Close,Volume\n{},10,11,9,10.5,100\n{},10,11,9,10.5,100\n"
    (tmp_path / "EU.csv").write_text(bars.format("03.04.2020", "04.03.2020"))
    (tmp_path / "US.csv").write_text(bars.format("2020-04-03", "2020-03-04"))
    out = read_price_files(str(tmp_path), "2020-01-01", "2020-12-31")
    assert set(out["ticker"]) == {"US"} and "date_order" in out.attrs["file_errors"]["EU"]
    out = read_price_files(str(tmp_path), "2020-01-01", "2020-12-31", date_order="dayfirst")
    assert sorted(out.loc[out["ticker"] == "EU", "date"].astype(str)) == ["2020-03-04", "2020-04-03"]


def test_dst_offsets_in_a_long_csv_do_not_fail_the_batch(tmp_path):
    (tmp_path / "long.csv").write_text(
        "Date,Symbol,Open,High,Low,Close,Volume\n"
        "2019-03-08T16:00:00-05:00,AAA,10,11,9,10.5,100\n2019-03-11T16:00:00-04:00,AAA,10,11,9,10.5,100\n")
    out = read_price_files(str(tmp_path), "2019-03-01", "2019-03-31")
    assert out["date"].astype(str).tolist() == ["2019-03-08", "2019-03-11"] and not out.attrs["file_errors"]


def test_odd_but_real_date_columns_are_read_not_fatal(tmp_path):
    """Found in review: a file whose stamps are midnight labels but one row is intraday kept the others on
    their written dates only by luck of the per-file rule; free-text dates across DST crashed; tz-aware
    datetime objects came back unconverted; a blank trailing line froze the ticker; a Parquet file with a
    duplicated index crashed the whole fetch."""
    got = session_dates(pd.Series(["2020-01-02T00:00:00Z", "2020-01-03T00:00:00Z", "2020-01-06T15:30:00Z"]))
    assert [str(d.date()) for d in got] == ["2020-01-02", "2020-01-03", "2020-01-06"]
    got = session_dates(pd.Series(["Thu, 02 Jan 2020 16:00:00 -0500", "Mon, 09 Mar 2020 16:00:00 -0400"]))
    assert [str(d.date()) for d in got] == ["2020-01-02", "2020-03-09"]
    aware = pd.Series([pd.Timestamp("2020-01-02 21:00", tz="UTC").to_pydatetime()], dtype=object)
    assert str(session_dates(aware)[0].date()) == "2020-01-02"
    assert str(session_dates(pd.Series([20200102.0, float("nan")]))[0].date()) == "2020-01-02"
    (tmp_path / "AAA.csv").write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,10,11,9,10.5,100\n,,,,,\n")
    frame = pd.DataFrame({"date": pd.to_datetime(["2020-01-02", "2020-01-03"]), "open": 1.0, "high": 1.0,
                          "low": 1.0, "close": 1.0, "volume": 1.0, "stock_splits": 0.0}, index=[0, 0])
    frame.to_parquet(tmp_path / "BBB.parquet")
    out = read_price_files(str(tmp_path), "2020-01-01", "2020-01-31")
    assert not out.attrs["file_errors"] and sorted(out["ticker"].unique()) == ["AAA", "BBB"]


def _layout(day: dt.date, layout: str, padded: bool) -> str:
    text = day.strftime(layout)
    return text if padded else text.replace("/0", "/").lstrip("0")


@settings(max_examples=120, deadline=None)
@given(days=st.lists(DAYS, min_size=1, max_size=25),
       layouts=st.lists(st.sampled_from(["%Y-%m-%d", "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                                         "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%m-%d-%Y", "%m/%d/%Y 16:00:00",
                                         "%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S%z"]), min_size=1, max_size=2),
       padded=st.booleans(), setting=st.sampled_from([None, "dayfirst", "monthfirst"]), hour=st.integers(0, 23),
       early=st.booleans())
def test_the_fast_path_for_plain_layouts_dates_exactly_as_the_general_path(days, layouts, padded, setting, hour,
                                                                          early):
    """Plain layouts are parsed in C (``_plain_dates``; a 500-ticker, 20-year folder read 3-5x faster); the
    general regex path decides everything else. Over generated files, one or two layouts mixed, both give the
    same dates, or the same refusal."""
    import cnn_pipelines.trading.prices.dates as dates

    if early:  # days 1-12 only: numeric dates read both ways
        days = [d.replace(day=d.day % 12 + 1) for d in days]
    stamps = [pd.Timestamp(d) + pd.Timedelta(hours=hour) for d in days]
    text = pd.Series([_layout(s.tz_localize("America/New_York") if "%z" in fmt else s, fmt, padded or "%z" in fmt)
                      for i, s in enumerate(stamps) for fmt in [layouts[i % len(layouts)]]])

    def outcome():
        try:
            return [str(d) for d in session_dates(text, date_order=setting)]
        except PriceSchemaError as exc:
            return type(exc).__name__

    fast = outcome()
    with mock.patch.object(dates, "_plain_dates", lambda values, date_order: None):
        assert fast == outcome(), text.tolist()
