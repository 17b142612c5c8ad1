"""The alphalens tearsheet on factors with a known IC, evaluated from the next open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.evaluation.tearsheet import factor_tearsheet, p_value, to_html, to_tables

DATES = pd.bdate_range("2024-01-01", periods=90)


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(0)
    tickers = [f"T{i:02d}" for i in range(30)]
    opens = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(DATES), len(tickers))), axis=0)),
                         index=DATES, columns=tickers)
    prices = opens.stack().rename("open").reset_index().rename(columns={"level_0": "date", "level_1": "ticker"})
    prices["date"] = prices["date"].dt.date
    # the signal dated t that alphalens should evaluate: open(t+2) / open(t+1) - 1
    fwd = opens.shift(-2) / opens.shift(-1) - 1
    return prices, fwd


def as_predictions(wide: pd.DataFrame) -> pd.DataFrame:
    out = wide.iloc[:60].stack().rename("prediction").reset_index()
    out.columns = ["date", "ticker", "prediction"]
    return out


def test_perfect_next_open_signal_has_ic_one(market):
    prices, fwd = market
    sheet = factor_tearsheet(as_predictions(fwd), prices, periods=(1, 5))
    assert sheet.ic_summary.loc["1D", "ic_mean"] == pytest.approx(1.0)
    assert sheet.ic_summary.loc["1D", "p_value"] < 1e-6
    q = sheet.mean_return_by_quantile["1D"]
    assert q.is_monotonic_increasing and sheet.spread.loc["1D", "top_minus_bottom_bps"] > 0
    assert sheet.sample["days"] == 60 and sheet.sample["tickers"] == 30 and sheet.sample["dropped_pct"] == 0.0


def test_same_day_close_signal_is_not_credited(market):
    prices, fwd = market
    # a signal equal to the return that ends at the next open (already known to no one at t's close? no:
    # it is realized before the trade) must show ~0 IC when evaluated from the next open
    opens = prices.pivot(index="date", columns="ticker", values="open")
    opens.index = pd.to_datetime(opens.index)
    stale = opens.shift(-1) / opens - 1
    sheet = factor_tearsheet(as_predictions(stale), prices, periods=(1,))
    assert abs(sheet.ic_summary.loc["1D", "ic_mean"]) < 0.1


def test_noisy_signal_ic_matches_construction(market):
    prices, fwd = market
    rng = np.random.default_rng(1)
    z = (fwd - fwd.mean(axis=1).values[:, None]) / fwd.std(axis=1).values[:, None]
    noisy = z + rng.normal(0, 2.0, z.shape)  # corr = 1/sqrt(1+4) ~ 0.45 (rank IC a bit lower)
    sheet = factor_tearsheet(as_predictions(noisy), prices, periods=(1,))
    assert 0.3 < sheet.ic_summary.loc["1D", "ic_mean"] < 0.55
    html = to_html(sheet, "test")
    assert "<img src='data:image/png;base64," in html and "dropped 0.0%" in html


def test_p_values_read_as_a_reader_quotes_them():
    assert [p_value(p) for p in (0.04567, 1e-9, float("nan"))] == ["0.046", "< 0.001", "n/a"]


def test_the_tearsheet_tables_show_shares_in_percent_and_ics_rounded(market):
    prices, fwd = market
    sheet = factor_tearsheet(as_predictions(fwd), prices, periods=(1, 5))
    tables = to_tables(sheet)
    ic = tables["ic_summary"].set_index("horizon")
    assert ic.loc["1D", "IC"] == round(sheet.ic_summary.loc["1D", "ic_mean"], 4) and ic.loc["1D", "p"] == "< 0.001"
    turnover = tables["turnover"].set_index("quantile")["turnover %/day"]
    expected = (100 * sheet.turnover["mean_daily_turnover"]).round(1)
    assert turnover.tolist() == expected.tolist() and (turnover > 1).any()  # in %, not a fraction
    spread = tables["top_minus_bottom"].set_index("horizon")
    assert spread.loc["5D", "bps"] == round(sheet.spread.loc["5D", "top_minus_bottom_bps"], 1)



def test_overlapping_horizons_are_not_counted_as_independent_days():
    """A 21-day IC measured on each of 46 consecutive days is about two independent windows, not 46: the
    tearsheet's t must shrink with the overlap (Newey-West), where the plain t-test would not."""
    from scipy import stats

    from cnn_pipelines.trading.evaluation.tearsheet import overlap_t

    rng = np.random.default_rng(3)
    daily = rng.normal(0.01, 0.1, 46 + 20)
    rolling = pd.Series(np.convolve(daily, np.ones(21) / 21, mode="valid"))  # 46 overlapping 21-day means
    plain_t = stats.ttest_1samp(rolling, 0.0).statistic
    t21, p21 = overlap_t(rolling, 21)
    assert abs(t21) < abs(plain_t) / 2 and p21 > stats.ttest_1samp(rolling, 0.0).pvalue
    iid = pd.Series(rng.normal(0.05, 0.1, 200))  # no overlap: close to the plain t-test
    assert overlap_t(iid, 1)[0] == pytest.approx(stats.ttest_1samp(iid, 0.0).statistic, rel=0.25)
    assert overlap_t(pd.Series([0.2] * 10), 1) == (np.inf, 0.0) and np.isnan(overlap_t(pd.Series([0.3]), 1)[0])


def test_horizons_no_day_has_realized_yet_are_left_out_not_the_whole_tearsheet(market):
    """A study whose test days all lie within 21 sessions of the newest prices (one test month ending at the
    files' last day) had no 21D return anywhere: alphalens dropped every row and the tearsheet crashed."""
    prices, fwd = market
    late = fwd.iloc[-10:].stack().rename("prediction").reset_index()  # the last 10 days: 5D realized on a few
    late.columns = ["date", "ticker", "prediction"]
    sheet = factor_tearsheet(late, prices, periods=(1, 5, 10, 21))
    assert list(sheet.ic_summary.index) == ["1D", "5D"]
    assert sheet.sample["horizons_not_yet_realized"] == "10D, 21D"
    assert sheet.ic_summary.loc["1D", "ic_mean"] == pytest.approx(1.0)  # the days where 5D is realized too
    assert sheet.sample["days"] == 4  # days -10 .. -7: 5D is in at the open of t+1 and out at that of t+6
    full = factor_tearsheet(as_predictions(fwd), prices, periods=(1, 5))
    assert "horizons_not_yet_realized" not in full.sample
    with pytest.raises(ValueError, match=r"has a realized 1D trade return yet"):
        factor_tearsheet(fwd.iloc[-1:].stack().rename("prediction").reset_index().set_axis(
            ["date", "ticker", "prediction"], axis=1), prices, periods=(1, 5))
