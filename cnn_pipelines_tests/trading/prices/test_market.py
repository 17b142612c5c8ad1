"""The synthetic market: deterministic per seed/config, and realistic enough to exercise every stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket

CFG = MarketConfig(seed=11, n_tickers=40, inception="2015-01-01")


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return SyntheticMarket(CFG).prices("2015-01-01", "2020-12-31")


def wide(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df.pivot(index="date", columns="ticker", values=col).sort_index()


def test_day_alone_equals_range_and_full_history(history):
    day = "2019-06-12"
    alone = SyntheticMarket(CFG).prices(day, day)  # fresh instance: simulated independently
    in_range = SyntheticMarket(CFG).prices("2019-06-01", "2019-06-30")
    in_full = history
    pick = lambda d: d[pd.to_datetime(d["date"]) == day].reset_index(drop=True)  # noqa: E731
    assert len(alone) > 30
    pd.testing.assert_frame_equal(alone, pick(in_range))
    pd.testing.assert_frame_equal(alone, pick(in_full))


def test_same_seed_same_market_other_seed_differs():
    a = SyntheticMarket(CFG).prices("2016-01-01", "2016-03-01")
    b = SyntheticMarket(CFG).prices("2016-01-01", "2016-03-01")
    c = SyntheticMarket(MarketConfig(seed=12, n_tickers=40, inception="2015-01-01")).prices("2016-01-01", "2016-03-01")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"].to_numpy()[:100], c["close"].to_numpy()[:100])


def test_ohlc_bars_are_consistent(history):
    assert (history[["open", "high", "low", "close"]] > 0).all().all()
    assert (history["low"] <= history[["open", "close"]].min(axis=1)).all()
    assert (history["high"] >= history[["open", "close"]].max(axis=1)).all()
    assert (history["volume"] > 0).all()
    assert not history.duplicated(["date", "ticker"]).any()


def _idio_returns(history: pd.DataFrame) -> pd.DataFrame:
    r = np.log(wide(history, "close")).diff()
    return r.sub(r.mean(axis=1), axis=0)  # remove the common market move


def test_fat_tails_and_volatility_clustering(history):
    r = np.log(wide(history, "close")).diff().stack().dropna()
    assert stats.kurtosis(r) > 1.0  # excess kurtosis: fatter than normal
    idio = _idio_returns(history)
    sq = (idio**2)
    ac = np.nanmean([sq[c].autocorr(1) for c in sq.columns if sq[c].count() > 300])
    assert ac > 0.05, ac


def test_short_term_reversal_only_with_signal():
    def lag1(strength: float) -> float:
        cfg = MarketConfig(seed=5, n_tickers=40, inception="2015-01-01", signal_strength=strength)
        idio = _idio_returns(SyntheticMarket(cfg).prices("2015-01-01", "2019-12-31"))
        return float(np.nanmean([idio[c].autocorr(1) for c in idio.columns if idio[c].count() > 300]))

    assert lag1(0.3) < -0.03
    assert abs(lag1(0.0)) < 0.02


def test_listings_delistings_and_data_gaps(history):
    first = history.groupby("ticker")["date"].min()
    last = history.groupby("ticker")["date"].max()
    assert (pd.to_datetime(first) > pd.Timestamp("2015-06-01")).sum() >= 3, "some tickers list later"
    assert (pd.to_datetime(last) < pd.Timestamp("2020-06-01")).sum() >= 1, "some tickers delist"
    listing = SyntheticMarket(CFG).listing_dates().set_index("ticker")
    for t in first.index:  # bars exist only inside each ticker's listing span
        assert first[t] >= max(listing.loc[t, "first_day"], pd.Timestamp("2015-01-01").date())
        if listing.loc[t, "last_day"] is not None:
            assert last[t] <= listing.loc[t, "last_day"]
    # gaps: some listed tickers miss a day while others trade
    counts = history.groupby("date").size()
    assert counts.diff().abs().max() >= 1
    # holidays have no bars at all
    dates = set(pd.to_datetime(history["date"]))
    assert pd.Timestamp("2019-12-25") not in dates and pd.Timestamp("2019-07-04") not in dates


def _oracle_ic(strength: float) -> tuple[float, float]:
    cfg = MarketConfig(seed=9, n_tickers=40, inception="2015-01-01", signal_strength=strength)
    m = SyntheticMarket(cfg)
    px = wide(m.prices("2015-01-01", "2018-12-31"), "close")
    fwd = np.log(px).diff().shift(-1)
    mu = m.expected_returns("2015-01-01", "2018-12-31").pivot(index="date", columns="ticker", values="expected_return")
    mu = mu.reindex_like(fwd)
    ics = [stats.spearmanr(mu.loc[d], fwd.loc[d], nan_policy="omit")[0] for d in fwd.index[30:-1]
           if mu.loc[d].abs().sum() > 0]
    ics = np.array([x for x in ics if np.isfinite(x)])
    return ics.mean(), ics.std() / np.sqrt(len(ics))


def test_true_expected_returns_are_exposed_and_predictive():
    ic, se = _oracle_ic(0.15)
    assert ic > 0.08 and ic > 5 * se


def test_expected_returns_are_zero_in_null_market():
    m = SyntheticMarket(MarketConfig(seed=9, n_tickers=10, signal_strength=0.0))
    assert (m.expected_returns("2013-01-01", "2013-06-30")["expected_return"] == 0).all()
