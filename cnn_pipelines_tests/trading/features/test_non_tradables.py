"""Indices (^GSPC, ^IXIC) and listed non-tradables never enter the universe, so never the panel, labels,
signals or backtest, however large their dollar volume (before issue 27 ^GSPC topped the universe)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from cnn_pipelines.trading.features.panel import universe_table
from cnn_pipelines.trading.features.universe import is_tradable
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
