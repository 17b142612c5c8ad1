"""Backtest arithmetic on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.evaluation.backtest import long_short_weights, max_drawdown, run_backtest

DATES = pd.bdate_range("2024-01-08", periods=5)


def prices_from_opens(opens: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for t, series in opens.items():
        for d, o in zip(DATES, series):
            rows.append((d.date(), t, o, o * 1.01, o * 0.99, o, 1000.0))
    return pd.DataFrame(rows, columns=["date", "ticker", "open", "high", "low", "close", "volume"])


def preds(values: dict[str, list[float]], days: int) -> pd.DataFrame:
    return pd.DataFrame([(DATES[i].date(), t, v[i]) for t, v in values.items() for i in range(days)],
                        columns=["date", "ticker", "prediction"])


def test_trades_at_next_open_long_top_short_bottom_with_costs():
    # opens: A rises 10% from day1 to day2, D falls 5%; B, C flat
    prices = prices_from_opens({"A": [10, 10, 11, 11, 11], "B": [20] * 5, "C": [30] * 5, "D": [40, 40, 38, 38, 38]})
    p = preds({"A": [4, 1, 1], "B": [3, 2, 2], "C": [2, 3, 3], "D": [1, 4, 4]}, days=3)
    res = run_backtest(p, prices, k=1, cost_bps=10)
    d = res.daily.set_index("date")
    day0 = pd.Timestamp(DATES[0])
    # signal at day0 close: long A, short D; held day1 open -> day2 open: +10% - (-5%) = +15%
    assert d.loc[day0, "gross"] == pytest.approx(0.10 + 0.05)
    assert d.loc[day0, "turnover"] == pytest.approx(2.0)           # enter both books
    assert d.loc[day0, "net"] == pytest.approx(0.15 - 2.0 * 0.001)
    day1 = pd.Timestamp(DATES[1])
    # day1 signal flips: long D, short A; held day2 -> day3 opens: flat -> 0 gross, turnover 4
    assert d.loc[day1, "gross"] == pytest.approx(0.0) and d.loc[day1, "turnover"] == pytest.approx(4.0)
    assert d.loc[day1, "net"] == pytest.approx(-0.004)
    # benchmark: equal-weighted open-to-open of all names on day0: (0.10 + 0 + 0 - 0.05) / 4
    assert d.loc[day0, "benchmark"] == pytest.approx(0.0125)
    assert res.stats.loc["total_return", "long_short"] == pytest.approx((1 + 0.148) * (1 - 0.004) * (1 + 0.0) - 1)


def test_the_same_day_close_is_never_used():
    # a huge close-to-close move on the signal day itself must not enter the P&L (we trade at the next open)
    prices = prices_from_opens({"A": [10] * 5, "B": [10] * 5})
    prices.loc[(prices["ticker"] == "A") & (prices["date"] == DATES[0].date()), "close"] = 20.0
    res = run_backtest(preds({"A": [1, 1, 1], "B": [0, 0, 0]}, 3), prices, k=1, cost_bps=0)
    assert (res.daily["gross"] == 0).all()


def test_weights_are_equal_gross_and_need_enough_names():
    pred = pd.DataFrame({"A": [1.0], "B": [2.0], "C": [3.0], "D": [np.nan]}, index=[pd.Timestamp("2024-01-08")])
    w = long_short_weights(pred, 1)
    assert w.loc[:, "C"].item() == 1.0 and w.loc[:, "A"].item() == -1.0 and w.loc[:, "D"].item() == 0.0
    # three names cannot fill two per side: K shrinks to one per side, gross long = gross short = 1
    w2 = long_short_weights(pred, 2)
    assert w2.loc[:, "C"].item() == 1.0 and w2.loc[:, "A"].item() == -1.0 and w2.loc[:, "B"].item() == 0.0


def test_max_drawdown():
    assert max_drawdown(pd.Series([0.1, -0.5, 0.2])) == pytest.approx(-0.5)
    assert max_drawdown(pd.Series([0.1, 0.1])) == 0.0
