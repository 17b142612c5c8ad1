"""Each validation rule at its boundary, in quarantine mode and with a context window: what is repaired, what is
held back (only that ticker's day), what is counted, and what the messages name. A wrong rule here silently
drops or keeps a bar that every feature, label and trade then reads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.validation import (BAND_TOLERANCE, CANONICAL_COLUMNS, PriceSchemaError,
                                                     PriceValidationError, collapse_duplicates, coerce_schema,
                                                     stale_off_session_bars, validate_prices)

XNYS = trading_calendar("XNYS")
MON, TUE, WED, THU, FRI = (dt.date(2018, 12, d) for d in (3, 4, 5, 6, 7))  # 5 Dec: NYSE closed (mourning)
SAT, SUN, NEXT_MON = dt.date(2018, 12, 8), dt.date(2018, 12, 9), dt.date(2018, 12, 10)


def bar(day, ticker="A", o=10.0, h=11.0, low=9.0, c=10.5, v=1000.0, **extra) -> dict:
    return {"date": day, "ticker": ticker, "open": o, "high": h, "low": low, "close": c, "volume": v, **extra}


def frame(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def loose(df, **kw):
    return validate_prices(df, calendar=XNYS, strict=False, **kw)


def test_a_rejected_bar_holds_back_that_tickers_day_only():
    df = frame(bar(MON), bar(TUE, c=-1.0), bar(THU), bar(MON, "B"), bar(TUE, "B"), bar(THU, "B"))
    out, report = loose(df)
    assert list(zip(out["date"], out["ticker"])) == [(MON, "A"), (MON, "B"), (TUE, "B"), (THU, "A"), (THU, "B")]
    assert list(out.index) == list(range(5)) and list(out.columns) == CANONICAL_COLUMNS
    q = report.quarantine
    assert q["rule"].tolist() == ["non-positive price"] and q["date"].tolist() == [TUE]
    assert list(q.columns) == ["rule", *CANONICAL_COLUMNS] and list(q.index) == [0]
    assert report.quarantined_tickers == ["A"] and report.quarantined_days == 1
    assert report.rows_in == 6 and report.rows_out == 5
    with pytest.raises(PriceValidationError):
        validate_prices(df, calendar=XNYS)  # strict: nothing passes


def test_quarantine_lists_rows_by_ticker_then_date():
    df = frame(bar(THU, "B", v=-1.0), bar(MON, "B", v=-1.0), bar(TUE, "A", h=8.0))
    q = loose(df)[1].quarantine
    assert list(zip(q["ticker"], q["date"])) == [("A", TUE), ("B", MON), ("B", THU)]
    assert list(q.index) == [0, 1, 2]
    assert set(q["rule"]) == {"negative volume", "high < low"}


def test_boundaries_that_are_valid_bars():
    df = frame(bar(MON, o=0.5, h=0.5, low=0.5, c=0.5, v=0.0))  # penny stock, high == low, no volume
    out, report = validate_prices(df, calendar=XNYS)
    assert len(out) == 1 and report.quarantine is None and report.repairs["widened_high_low"] == 0


@pytest.mark.parametrize("field,side", [("close", "high"), ("open", "high"), ("close", "low"), ("open", "low")])
def test_open_or_close_just_outside_the_band_is_repaired_further_out_rejected(field, side):
    inside = (1 + 0.8 * BAND_TOLERANCE) if side == "high" else (1 - 0.8 * BAND_TOLERANCE)
    outside = (1 + 1.5 * BAND_TOLERANCE) if side == "high" else (1 - 1.5 * BAND_TOLERANCE)
    edge = 11.0 if side == "high" else 9.0
    ok = frame(bar(MON, **{"o" if field == "open" else "c": edge * inside}))
    out, report = validate_prices(ok, calendar=XNYS)
    assert report.repairs["widened_high_low"] == 1
    assert out[side].iloc[0] == pytest.approx(edge * inside)  # widened to include it
    bad = frame(bar(MON, **{"o" if field == "open" else "c": edge * outside}))
    q = loose(bad)[1].quarantine
    assert q["rule"].tolist() == ["open/close outside [low, high]"]


def test_a_close_on_the_high_needs_no_repair():
    out, report = validate_prices(frame(bar(MON, c=11.0, o=9.0)), calendar=XNYS)
    assert report.repairs["widened_high_low"] == 0 and out["high"].iloc[0] == 11.0 and out["low"].iloc[0] == 9.0


def test_high_below_low_is_one_rule_not_two():
    q = loose(frame(bar(MON, h=9.0, low=11.0, o=10.0, c=10.0)))[1].quarantine
    assert q["rule"].tolist() == ["high < low"]


def test_off_session_bars_name_the_calendar_or_the_weekend():
    q = loose(frame(bar(WED, c=10.7)))[1].quarantine
    assert q["rule"].tolist() == ["dated on a non-trading day (XNYS)"]
    q = validate_prices(frame(bar(SAT)), strict=False)[1].quarantine
    assert q["rule"].tolist() == ["dated on a weekend"]
    out, report = validate_prices(frame(bar(WED)), strict=False)  # no calendar: every weekday is a session
    assert len(out) == 1 and report.quarantine is None


def test_stale_bars_on_closed_days_are_dropped_and_counted():
    df = frame(bar(TUE, c=10.5, v=500.0),
               bar(WED, c=10.5, v=500.0),                                   # repeat of Tuesday: stale
               bar(SAT, "A", o=10.2, h=10.2, low=10.2, c=10.2, v=0.0),      # flat at Friday's close, no volume
               bar(FRI, c=10.2, v=700.0),
               bar(SUN, "A", o=10.2, h=10.2, low=10.2, c=10.2, v=0.0))       # Saturday repeated
    out, report = validate_prices(df, calendar=XNYS)
    assert sorted(out["date"]) == [TUE, FRI]
    assert report.repairs["dropped_off_calendar_repeats"] == 3


def test_a_closed_day_bar_that_moved_or_traded_new_volume_is_not_stale():
    moved = frame(bar(TUE), bar(WED, c=10.6))
    assert loose(moved)[1].quarantined_days == 1
    new_volume = frame(bar(TUE, v=500.0), bar(WED, v=800.0))
    assert loose(new_volume)[1].quarantined_days == 1
    zero_volume = frame(bar(TUE, v=500.0), bar(WED, v=0.0))
    assert loose(zero_volume)[1].quarantine is None
    flat_with_volume = frame(bar(TUE, v=500.0), bar(WED, o=10.5, h=10.5, low=10.5, c=10.5, v=300.0))
    assert loose(flat_with_volume)[1].quarantined_days == 1


def test_staleness_looks_back_at_most_ten_days_and_only_at_the_same_ticker():
    far = frame(bar(dt.date(2018, 11, 23)), bar(dt.date(2018, 12, 2)))    # 9 days: a Sunday repeat
    assert validate_prices(far, calendar=XNYS)[1].repairs["dropped_off_calendar_repeats"] == 1
    ten = frame(bar(dt.date(2018, 11, 22 + 1)), bar(dt.date(2018, 12, 3 - 1 + 1)))  # 10 days apart (Sun -> Mon)
    assert len(ten) == 2
    too_far = frame(bar(dt.date(2018, 11, 21)), bar(dt.date(2018, 12, 2)))  # 11 days: not stale
    assert loose(too_far)[1].quarantined_days == 1
    other = frame(bar(TUE, "B"), bar(WED, "A"))  # B's Tuesday is not A's previous bar
    assert loose(other)[1].quarantined_days == 1


def test_stale_rule_direct():
    df = frame(bar(WED), bar(TUE), bar(WED, "B"), bar(TUE, "B", c=10.6))  # rows out of order
    off = np.array([True, False, True, False])
    assert stale_off_session_bars(df, off).tolist() == [True, False, False, False]
    assert stale_off_session_bars(df, np.zeros(4, dtype=bool)).dtype == bool
    assert not stale_off_session_bars(df, np.zeros(4, dtype=bool)).any()
    ten_days = frame(bar(dt.date(2018, 11, 25)), bar(dt.date(2018, 12, 5)))  # exactly ten days back
    assert stale_off_session_bars(ten_days, np.array([False, True])).tolist() == [False, True]
    two_back = frame(bar(MON), bar(TUE, c=10.9), bar(WED))  # Wednesday repeats Monday, not its previous bar
    assert stale_off_session_bars(two_back, np.array([False, False, True])).tolist() == [False, False, False]
    almost = frame(bar(TUE), bar(WED, c=10.5 * (1 + 1e-6)))  # beyond the 1e-9 tolerance: a real move
    assert not stale_off_session_bars(almost, np.array([False, True])).any()
    within = frame(bar(TUE), bar(WED, c=10.5 * (1 + 1e-12)))
    assert stale_off_session_bars(within, np.array([False, True])).tolist() == [False, True]


def test_the_window_returns_judges_and_counts_only_its_own_days():
    df = frame(bar(MON, c=-1.0), bar(TUE), bar(WED), bar(THU), bar(FRI), bar(NEXT_MON))
    out, report = loose(df, window=(WED, FRI))
    assert list(out["date"]) == [THU, FRI]  # Monday's bad bar is context, Wednesday's repeat is stale
    assert report.rows_in == 3 and report.quarantine is None
    assert report.repairs["dropped_off_calendar_repeats"] == 1
    edge = loose(df, window=(TUE, TUE))[0]
    assert list(edge["date"]) == [TUE]
    before = frame(bar(SUN, c=10.5), bar(MON), bar(TUE))  # a stale bar before the window is not counted
    assert loose(before, window=(MON, TUE))[1].repairs["dropped_off_calendar_repeats"] == 0


def test_conflicts_outside_the_window_are_not_reported():
    df = frame(bar(MON), bar(MON, c=10.6), bar(TUE))
    out, report = loose(df, window=(TUE, TUE))
    assert report.quarantine is None and list(out["date"]) == [TUE]
    out, report = loose(df)
    assert report.quarantined_days == 1 and list(out["date"]) == [TUE]


def test_duplicates_keep_one_bar_and_count_it():
    df = frame(bar(MON), bar(MON, c=10.5 * (1 + 1e-12)), bar(TUE))
    out, report = validate_prices(df, calendar=XNYS)
    assert len(out) == 2 and report.repairs["dropped_exact_duplicates"] == 1
    assert out["close"].iloc[0] == 10.5  # the smaller of the two, whatever the order
    out2, _ = validate_prices(df.iloc[[1, 0, 2]], calendar=XNYS)
    pd.testing.assert_frame_equal(out, out2)
    none = validate_prices(frame(bar(MON)), calendar=XNYS)[1]
    assert none.repairs["dropped_exact_duplicates"] == 0


def test_collapse_duplicates_direct():
    df = frame(bar(MON), bar(MON), bar(MON, c=10.6), bar(TUE), bar(TUE), bar(WED))
    files = pd.Series(["b.csv", "a.parquet", "b.csv", "a.parquet", "a.parquet", "c.csv"])
    kept, dropped, conflicts = collapse_duplicates(df, files)
    assert dropped == 1 and sorted(kept.index) == [0, 1, 2, 3, 5] or sorted(kept.index) == [0, 1, 2, 4, 5]
    assert len(conflicts) == 3 and set(conflicts["rule"]) == {"conflicting duplicate (date, ticker) in a.parquet, b.csv"}
    assert list(conflicts.columns) == ["rule", *CANONICAL_COLUMNS]
    unnamed = collapse_duplicates(df, None)[2]
    assert set(unnamed["rule"]) == {"conflicting duplicate (date, ticker)"}
    partly = collapse_duplicates(df, pd.Series(["x.csv"], index=[0]))[2]
    assert set(partly["rule"]) == {"conflicting duplicate (date, ticker) in ?, x.csv"}
    clean, n, none = collapse_duplicates(frame(bar(MON), bar(TUE)), files)
    assert n == 0 and len(none) == 0 and list(none.columns) == ["rule", *CANONICAL_COLUMNS] and len(clean) == 2


def test_duplicates_with_a_missing_value_collapse_only_when_both_miss_it():
    same = frame(bar(MON, v=np.nan), bar(MON, v=np.nan))
    assert collapse_duplicates(same)[1] == 1
    one = frame(bar(MON, v=np.nan), bar(MON))
    assert len(collapse_duplicates(one)[2]) == 2


def test_conflict_messages_name_the_files_through_validate_prices():
    df = frame(bar(MON, source_file="MSFT.csv"), bar(MON, c=10.6, source_file="msft.parquet"))
    q = loose(df)[1].quarantine
    assert set(q["rule"]) == {"conflicting duplicate (date, ticker) in MSFT.csv, msft.parquet"}
    assert loose(df.drop(columns="source_file"))[1].quarantine["rule"].iloc[0] == "conflicting duplicate (date, ticker)"


def test_the_error_message_counts_rules_and_shows_at_most_twenty_rows():
    rows = [bar(d.date(), f"T{i}", v=-1.0) for i in range(3) for d in pd.bdate_range("2018-11-01", periods=9)]
    with pytest.raises(PriceValidationError) as err:
        validate_prices(frame(*rows), calendar=XNYS)
    msg = str(err.value)
    assert "27 price rows rejected ({'negative volume': 27}); nothing was written" in msg
    assert msg.endswith("... and 7 more") and msg.count("T0") + msg.count("T1") + msg.count("T2") == 20
    assert "  date" not in msg.splitlines()[1][:2]  # no index column
    assert len(err.value.violations) == 27
    assert list(err.value.violations["date"]) == sorted(err.value.violations["date"])  # by date in strict mode
    short = PriceValidationError(pd.DataFrame([{"rule": "x", **bar(MON)}]))
    assert not str(short).endswith("more") and "1 price rows rejected ({'x': 1})" in str(short)


def test_schema_names_source_and_column():
    good = frame(bar(MON))
    with pytest.raises(PriceSchemaError, match=r"^vendor.csv: missing column\(s\) \['volume'\]"):
        coerce_schema(good.drop(columns="volume"), "vendor.csv")
    with pytest.raises(PriceSchemaError, match=r"^prices: column 'close' has non-numeric values, e.g. \['a', 'b', 'c'\]$"):
        coerce_schema(pd.concat([good] * 5, ignore_index=True).assign(close=["a", "b", "c", "d", "e"]))
    with pytest.raises(PriceSchemaError, match=r"^f.csv: column 'ticker' has 1 empty values$"):
        coerce_schema(frame(bar(MON), bar(TUE, ticker=None)), "f.csv")
    with pytest.raises(PriceSchemaError, match=r"f.csv: column 'date' has 1 empty values"):
        coerce_schema(frame(bar(MON), bar(None)), "f.csv")
    out = coerce_schema(frame(bar(MON, ticker=" msft ", v=5)))
    assert out["ticker"].iloc[0] == "msft" and str(out["ticker"].dtype) == "string"
    assert out["volume"].dtype == "float64" and out["open"].dtype == "float64"
    assert out["date"].iloc[0] == MON and list(out.columns) == CANONICAL_COLUMNS


def test_duplicates_one_part_in_ten_million_apart_are_two_different_bars():
    """The same-bar tolerance is relative 1e-9: numpy's default (1e-5) would merge real conflicts."""
    df = frame(bar(MON), bar(MON, c=10.5 * (1 + 1e-7)))
    assert len(collapse_duplicates(df)[2]) == 2
    assert loose(df)[1].quarantined_days == 1


def test_a_bar_with_high_equal_to_low_and_a_close_far_outside_is_rejected_not_widened():
    q = loose(frame(bar(MON, h=10.0, low=10.0, o=10.0, c=10.2)))[1].quarantine
    assert q["rule"].tolist() == ["open/close outside [low, high]"]
