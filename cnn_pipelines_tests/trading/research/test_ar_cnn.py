"""Notebook 04's autoregressive CNN: monthly samples are built right, and nothing it is fitted on for a test
month moves when prices on or after that month's cutoff change."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnn_pipelines.trading.features.panel import universe_table
from cnn_pipelines.trading.models.autoregressive import ArSettings, ar_fold, fit_predict, monthly_returns, samples
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
from cnn_pipelines.trading.research.walkforward import fold_for
from cnn_pipelines.trading.settings import FeatureSettings, current_research_settings

RS = current_research_settings()
FS = FeatureSettings(universe_size=20)
AR = ArSettings(lags=6, epochs=5)


def test_samples_hold_the_last_lags_and_the_next_month():
    days = pd.bdate_range("2020-01-01", "2020-12-31")
    close = pd.Series(np.arange(len(days), dtype=float) + 100.0, index=days)
    prices = pd.DataFrame({"date": days.date, "ticker": "AAA", "close": close.to_numpy()})
    r = monthly_returns(prices, pd.Period("2020-12", "M"))
    assert list(r.index) == list(pd.period_range("2020-02", "2020-12", freq="M"))
    x, m, y, keys = samples(r, [pd.Period("2020-08", "M")], lags=3, clip=0.5)
    assert keys == [(pd.Period("2020-08", "M"), "AAA")]
    np.testing.assert_allclose(x[0, :, 0], r.loc[pd.period_range("2020-06", "2020-08", freq="M"), "AAA"], rtol=1e-6)
    assert y[0] == np.float32(r.loc[pd.Period("2020-09", "M"), "AAA"]) and m[0].argmax() == 8  # predicting September


def _inputs(prices):
    return prices, universe_table(prices, FS, prices["date"].min(), prices["date"].max())


def test_nothing_ar_cnn_is_fitted_on_sees_prices_from_the_cutoff_on():
    prices = SyntheticMarket(MarketConfig(seed=4, n_tickers=25, inception="2014-01-01")).prices("2014-01-01", "2016-12-31")
    period = "2016-07-01"
    cutoff = pd.Timestamp(fold_for(period, RS, trading_calendar("synthetic")).cutoff)
    base = ar_fold(*_inputs(prices), period, cutoff, RS.train_months, AR)
    assert len(base.train[0]) > 100 and base.months[-1] + 1 <= pd.Period(cutoff, "M")

    def perturbed(since):
        px = prices.copy()
        mask = pd.to_datetime(px["date"]) >= since
        px.loc[mask, ["open", "high", "low", "close"]] *= 1.3
        return px

    after = ar_fold(*_inputs(perturbed(cutoff)), period, cutoff, RS.train_months, AR)
    for a, b in zip(base.train[:3], after.train[:3]):
        np.testing.assert_array_equal(a, b)  # every training input, month and label
    assert base.train[3] == after.train[3]
    # the same change a month earlier reaches the training labels: the test can fail
    earlier = ar_fold(*_inputs(perturbed(cutoff - pd.Timedelta(days=45))), period, cutoff, RS.train_months, AR)
    assert not np.array_equal(base.train[2], earlier.train[2])
    # inputs for the test month come from before the month starts, and predictions are finite
    pred = fit_predict(base.train, base.inputs, AR, seed=1)
    assert len(pred) == len(base.tickers) > 5 and np.isfinite(pred).all()
