"""Every validation rule: repaired by its documented rule or rejected with the offending rows named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.prices.validation import PriceSchemaError, PriceValidationError, validate_prices


def bars(n: int = 4) -> pd.DataFrame:
    dates = pd.bdate_range("2021-03-01", periods=n).date
    return pd.DataFrame({
        "date": np.repeat(dates, 2), "ticker": ["AAA", "BBB"] * n,
        "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0,
    })


def rejected(df: pd.DataFrame) -> PriceValidationError:
    with pytest.raises(PriceValidationError) as info:
        validate_prices(df)
    return info.value


def test_clean_table_passes_sorted_with_canonical_types():
    df = bars().sample(frac=1, random_state=0)
    out, report = validate_prices(df)
    assert list(out.columns) == ["date", "ticker", "open", "high", "low", "close", "volume"]
    assert out["ticker"].dtype == "string" and out["close"].dtype == "float64"
    assert out[["date", "ticker"]].equals(out.sort_values(["date", "ticker"])[["date", "ticker"]])
    assert report.rows_in == report.rows_out == 8


@pytest.mark.parametrize("col,value,rule", [
    ("close", np.nan, "NaN price or volume"),
    ("volume", np.nan, "NaN price or volume"),
    ("low", 0.0, "non-positive price"),
    ("open", -1.0, "non-positive price"),
    ("volume", -5.0, "negative volume"),
])
def test_bad_values_are_rejected_naming_the_row(col, value, rule):
    df = bars()
    df.loc[3, col] = value
    err = rejected(df)
    assert list(err.violations["rule"]) == [rule]
    row = err.violations.iloc[0]
    assert row["ticker"] == df.loc[3, "ticker"] and row["date"] == df.loc[3, "date"]
    assert rule in str(err) and "BBB" in str(err) and "nothing was written" in str(err)


def test_high_below_low_rejected():
    df = bars()
    df.loc[2, ["high", "low"]] = [8.0, 9.0]
    assert list(rejected(df).violations["rule"]) == ["high < low"]


def test_close_far_outside_band_rejected_and_small_excess_repaired():
    df = bars()
    df.loc[1, "close"] = 12.0  # 9% above high
    assert list(rejected(df).violations["rule"]) == ["open/close outside [low, high]"]
    df = bars()
    df.loc[1, "close"] = 11.02  # 0.2% above high: vendor rounding
    df.loc[5, "open"] = 8.99
    out, report = validate_prices(df)
    assert report.repairs["widened_high_low"] == 2
    assert out.loc[(out["ticker"] == "BBB") & (out["close"] == 11.02), "high"].item() == 11.02
    assert (out["low"] <= out[["open", "close"]].min(axis=1)).all()


def test_duplicates_exact_dropped_conflicting_rejected():
    df = pd.concat([bars(), bars().iloc[[0]]], ignore_index=True)
    out, report = validate_prices(df)
    assert len(out) == 8 and report.repairs["dropped_exact_duplicates"] == 1
    conflict = bars().iloc[[0]].assign(close=10.7)
    err = rejected(pd.concat([bars(), conflict], ignore_index=True))
    assert set(err.violations["rule"]) == {"conflicting duplicate (date, ticker)"}
    assert len(err.violations) == 2 and set(err.violations["ticker"]) == {"AAA"}


def test_all_nan_bar_is_dropped_as_no_trade():
    df = bars()
    df.loc[4, ["open", "high", "low", "close", "volume"]] = np.nan
    out, report = validate_prices(df)
    assert len(out) == 7 and report.repairs["dropped_empty_bars"] == 1


def test_weekend_rows_rejected():
    df = bars()
    df.loc[0, "date"] = pd.Timestamp("2021-03-06").date()  # Saturday, a bar of its own (not a repeat)
    df.loc[0, "close"] = 10.7
    assert list(rejected(df).violations["rule"]) == ["dated on a weekend"]


def test_schema_errors_name_the_column():
    with pytest.raises(PriceSchemaError, match="volume"):
        validate_prices(bars().drop(columns="volume"))
    df = bars().astype({"close": object})
    df.loc[0, "close"] = "n/a"
    with pytest.raises(PriceSchemaError, match="'close'"):
        validate_prices(df)


def test_message_lists_many_rows_with_count():
    df = bars(30)
    df["volume"] = -1.0
    err = rejected(df)
    assert len(err.violations) == 60 and "and 40 more" in str(err)


def test_a_failed_price_check_names_each_bad_bar_in_an_inline_table():
    """The checks' evidence is a table the UI shows inline: ticker, day and the bar's values on one line."""
    from cnn_pipelines.trading.prices.checks import price_check_results

    df = validate_prices(bars())[0].assign(adjustment=1.0)  # the frame raw_prices writes, then broken
    df.loc[3, ["low", "volume"]] = [10.9, 2_500_000.0]  # low above close: a broken bar
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # and a duplicated (date, ticker)
    results = {r.check_name: r for r in price_check_results(df)}
    sanity, dups = results["price_sanity"], results["unique_date_ticker"]
    assert not sanity.passed and sanity.metadata["violations"].value == 1
    row = sanity.metadata["examples"].records[0].data
    assert (row["ticker"], row["date"]) == ("BBB", "2021-03-02")
    assert row["bar"] == "o 10 h 11 l 10.9 c 10.5 v 2,500,000"
    assert not dups.passed and {r.data["ticker"] for r in dups.metadata["examples"].records} == {"AAA"}
    assert all(r.passed and r.metadata.get("examples", None) in (None, dg.MetadataValue.text("none"))
               for r in price_check_results(validate_prices(bars())[0].assign(adjustment=1.0)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 40), seed=st.integers(0, 10**6), splits=st.lists(st.tuples(st.integers(1, 39),
                                                                                  st.sampled_from([0.5, 0.1, 3.0, 0.25])),
                                                                        max_size=3),
       spike=st.one_of(st.none(), st.tuples(st.integers(1, 39), st.sampled_from([100.0, 0.01, 12.0, 1 / 12]))))
def test_plausible_moves_flags_planted_spikes_never_adjusted_splits_and_judges_a_day_as_a_range(n, seed, splits,
                                                                                                spike):
    """Daily moves within the limit and splits that carry their adjustment are never flagged; a planted close
    x100 (or x0.01, x12, x1/12: beyond the limit whatever the day's own move) is flagged on its day; a run over
    the range flags what day-by-day runs with the stored days before them as context flag."""
    from cnn_pipelines.trading.prices.checks import MOVE_LIMIT, implausible_moves

    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2021-03-01", periods=n)
    close = 20 * np.exp(np.cumsum(rng.uniform(-0.5, 0.5, n) * np.log(MOVE_LIMIT) * 0.9))  # |log move| < log 5
    adjustment = np.ones(n)
    for at, factor in splits:
        if at < n:
            close[at:] *= factor  # the bars as traded after a split ...
            adjustment[at] *= factor  # ... and the factor that makes the earlier ones comparable
    bars = pd.DataFrame({"date": days.date, "ticker": "T", "close": close, "adjustment": adjustment})
    planted = None
    if spike and spike[0] < n:
        planted = days[spike[0]].strftime("%Y-%m-%d")
        bars.loc[spike[0], "close"] *= spike[1]
    flagged = implausible_moves(bars)
    if planted is None:
        assert flagged.empty
    else:
        assert planted in set(flagged["date"])
        assert set(flagged["date"]) <= {planted, *[d.strftime("%Y-%m-%d") for d in days[spike[0] + 1: spike[0] + 2]]}
    day_by_day = pd.concat([implausible_moves(bars.iloc[: i + 1], since=bars["date"].iloc[i]) for i in range(n)],
                           ignore_index=True)
    pd.testing.assert_frame_equal(day_by_day, flagged.reset_index(drop=True), check_dtype=False)
