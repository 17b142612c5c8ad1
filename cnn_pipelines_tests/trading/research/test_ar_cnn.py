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


def _monthly_market(persistence: float, seed: int, names: int = 60, months: int = 40):
    """Daily closes whose month-over-month returns follow r[m+1] = persistence * r[m] + noise per name (a
    planted signal a monthly model can see when persistence > 0; the null market when 0)."""
    rng = np.random.default_rng(seed)
    r = np.zeros((months, names))
    r[0] = rng.normal(0, 0.06, names)
    for m in range(1, months):
        r[m] = persistence * r[m - 1] + rng.normal(0, 0.06, names)
    level = 100 * np.cumprod(1 + r, axis=0)
    month_index = pd.period_range("2017-01", periods=months, freq="M")
    days = pd.bdate_range(month_index[0].start_time, month_index[-1].end_time)
    rows = level[days.to_period("M").map(lambda p: month_index.get_loc(p)).to_numpy()]
    tickers = [f"M{i:02d}" for i in range(names)]
    prices = pd.DataFrame({"date": np.repeat(days.date, names), "ticker": np.tile(tickers, len(days)),
                           "close": rows.ravel()})
    return prices, pd.DataFrame(r, index=month_index, columns=tickers)


def _monthly_ics(persistence: float, seed: int) -> list[float]:
    prices, realized = _monthly_market(persistence, seed)
    universe = prices[["date", "ticker"]]
    ics = []
    for period in pd.period_range("2019-07", periods=6, freq="M"):
        cutoff = fold_for(str(period.start_time.date()), RS, trading_calendar("synthetic")).cutoff
        f = ar_fold(prices, universe, str(period.start_time.date()), cutoff, RS.train_months, AR_TEST)
        pred = pd.Series(fit_predict(f.train, f.inputs, AR_TEST, seed=seed), index=f.tickers)
        ics.append(float(pred.rank().corr(realized.loc[period, f.tickers].rank())))
    return ics


AR_TEST = ArSettings(lags=6, epochs=10)


def test_ar_cnn_recovers_a_planted_monthly_signal_and_finds_none_in_the_null_market():
    """Six test months of 60 names each: the planted market's monthly IC is clearly positive; the null
    market's stays within 2 s.e. of zero (seeds pooled, as the baselines' null test does)."""
    planted = _monthly_ics(0.5, seed=1)
    null = _monthly_ics(0.0, seed=1) + _monthly_ics(0.0, seed=2)
    mean, se = np.mean(planted), np.std(planted, ddof=1) / np.sqrt(len(planted))
    print(f"planted monthly IC {mean:+.3f} (s.e. {se:.3f}) {np.round(planted, 3)}")
    assert mean > 0.2 and mean > 2 * se
    mean, se = np.mean(null), np.std(null, ddof=1) / np.sqrt(len(null))
    print(f"null monthly IC {mean:+.3f} (s.e. {se:.3f}) {np.round(null, 3)}")
    assert abs(mean) < 2 * se
