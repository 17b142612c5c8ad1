"""Indices (^GSPC, ^IXIC) and listed non-tradables never enter the universe, so never the panel, labels,
signals or backtest, however large their dollar volume (before issue 27 ^GSPC topped the universe); names that
did not trade never enter either, however few tickers there are."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.features.panel import universe_table
from cnn_pipelines.trading.features.universe import is_tradable, universe_membership
from cnn_pipelines.trading.settings import PRESETS


def test_indices_and_listed_names_are_never_members():
    days = pd.bdate_range("2020-01-01", periods=120)
    names = ["^GSPC", "SPY", "AAA", "BBB", "CCC"]
    rng = np.random.default_rng(0)
    rows = []
    for k, t in enumerate(names):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        volume = 1e9 / (k + 1)  # the index and SPY trade the most
        rows.append(pd.DataFrame({"date": days.date, "ticker": t, "open": close, "high": close * 1.01,
                                  "low": close * 0.99, "close": close, "volume": volume}))
    prices = pd.concat(rows, ignore_index=True).astype({"ticker": "string"})
    s = replace(PRESETS["demo"], universe_size=2, universe_window=20, universe_min_obs=15, non_tradables=("spy",))
    members = universe_table(prices, s, days[30].date(), days[-1].date())
    assert set(members["ticker"]) == {"AAA", "BBB"}
    everyone = universe_table(prices, replace(s, non_tradables=()), days[30].date(), days[-1].date())
    assert set(everyone["ticker"]) == {"SPY", "AAA"}  # the index is out even without a list
    assert is_tradable(["^IXIC", "ixic", "MSFT"], ["MSFT"]).tolist() == [False, True, False]


def test_a_name_that_did_not_trade_never_fills_a_universe_larger_than_the_tickers():
    """A suspended stock whose vendor repeats the close with volume 0 (or a file without volumes) has median
    dollar volume 0: with more seats than tickers it used to take one, and its stale price was traded."""
    days = pd.bdate_range("2020-01-01", periods=80)
    rng = np.random.default_rng(1)
    rows = []
    for t in ["AAA", "BBB", "HALTED", "NOVOL"]:
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        volume = np.full(len(days), 1e6)
        if t == "NOVOL":
            volume[:] = 0.0
        if t == "HALTED":  # suspended from day 40: the last close repeated, no volume
            close[40:], volume[40:] = close[39], 0.0
        rows.append(pd.DataFrame({"date": days.date, "ticker": t, "open": close, "high": close, "low": close,
                                  "close": close, "volume": volume}))
    prices = pd.concat(rows, ignore_index=True).astype({"ticker": "string"})
    s = replace(PRESETS["demo"], universe_size=10, universe_window=20, universe_min_obs=15)
    members = universe_table(prices, s, days[25].date(), days[-1].date())
    assert "NOVOL" not in set(members["ticker"])
    halted = members.loc[members["ticker"] == "HALTED", "date"]
    assert halted.min() == days[25].date() and halted.max() < days[55].date()  # out once most of its window is idle
    assert (members["median_dollar_volume"] > 0).all()
    assert members.attrs["untraded"]["NOVOL"] == len(pd.bdate_range(days[25], days[-1]))
    assert members.attrs["no_volume_days"] == 0
    # prices without volumes (FX rates): nothing can be ranked by dollar volume, so everyone with the bars is in
    fx = prices.assign(volume=0.0)
    fx_members = universe_table(fx, replace(s, universe_size=3), days[25].date(), days[-1].date())
    assert set(fx_members["ticker"]) == {"AAA", "BBB", "HALTED"} and fx_members.attrs["untraded"] == {}
    assert fx_members.attrs["no_volume_days"] == len(pd.bdate_range(days[25], days[-1]))


@settings(max_examples=60, deadline=None)
@given(T=st.integers(3, 30), N=st.integers(1, 8), size=st.integers(1, 10), window=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1))
def test_members_are_the_top_size_of_the_tradable_names_that_traded(T, N, size, window, seed):
    rng = np.random.default_rng(seed)
    close = rng.uniform(0.5, 50, (T, N))
    volume = np.where(rng.random((T, N)) < rng.random(N), 0.0, rng.uniform(1, 1e6, (T, N)))
    has_bar = rng.random((T, N)) < 0.9
    tradable = rng.random(N) < 0.8
    min_obs = int(rng.integers(1, window + 1))
    member, rank, med = universe_membership(close, volume, has_bar, size, window, min_obs, tradable)
    known = np.isfinite(med) & tradable[None, :]
    traded = known & (med > 0)
    eligible = traded | (known & ~traded.any(axis=1, keepdims=True))  # a day nobody traded: no volumes to rank by
    assert not (member & ~eligible).any()
    assert (member.sum(axis=1) == np.minimum(size, eligible.sum(axis=1))).all()
    for t in range(T):  # nobody left out trades more than a member
        if member[t].any() and (eligible[t] & ~member[t]).any():
            assert med[t][member[t]].min() >= med[t][eligible[t] & ~member[t]].max()
