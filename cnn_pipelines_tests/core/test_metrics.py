"""Rank IC and its standard error on hand-checked cases: the statistic every model is judged by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from cnn_pipelines.trading.evaluation.metrics import MIN_NAMES, daily_ic, mean_and_se, oos_ic, seed_ic_spread


def frame(rows):
    return pd.DataFrame(rows, columns=["date", "p", "y"])


def test_daily_ic_is_spearman_per_date():
    rng = np.random.default_rng(0)
    dates = np.repeat(["d1", "d2"], 7)
    p, y = rng.normal(size=14), rng.normal(size=14)
    ic = daily_ic(dates, p, y)
    assert list(ic.index) == ["d1", "d2"]
    for i, day in enumerate(["d1", "d2"]):
        s = slice(7 * i, 7 * i + 7)
        assert ic[day] == pytest.approx(spearmanr(p[s], y[s]).statistic)


def test_perfect_and_reversed_rankings():
    dates = np.array(["a"] * 4 + ["b"] * 4)
    p = np.array([1, 2, 3, 4, 1, 2, 3, 4], float)
    y = np.array([10, 20, 30, 40, 4, 3, 2, 1], float)
    ic = daily_ic(dates, p, y)
    assert ic["a"] == pytest.approx(1.0) and ic["b"] == pytest.approx(-1.0)


def test_a_date_needs_min_names_with_both_values():
    assert MIN_NAMES == 3
    dates = np.array(["a"] * 3 + ["b"] * 3 + ["c"] * 2)
    p = np.array([1, 2, 3, 1, 2, np.nan, 1, 2], float)
    y = np.array([1, 2, 3, 3, 2, 1, 1, 2], float)
    ic = daily_ic(dates, p, y)
    assert list(ic.index) == ["a"]  # b has 2 names with a prediction, c has 2 names
    assert list(daily_ic(dates, p, y, min_names=2).index) == ["a", "b", "c"]


def test_a_missing_label_drops_the_name_not_the_date():
    dates = np.array(["a"] * 4)
    ic = daily_ic(dates, np.array([1, 2, 3, 4.0]), np.array([1, 2, 3, np.nan]))
    assert ic["a"] == pytest.approx(1.0)


def test_constant_predictions_have_no_ic():
    dates = np.array(["a"] * 4 + ["b"] * 4)
    p = np.array([1, 1, 1, 1, 1, 2, 3, 4], float)
    y = np.array([1, 2, 3, 4, 1, 2, 3, 4], float)
    assert list(daily_ic(dates, p, y).index) == ["b"]


def test_no_usable_date_gives_an_empty_series():
    out = daily_ic(np.array(["a", "a"]), np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert isinstance(out, pd.Series) and out.empty


def test_mean_and_standard_error():
    mean, se = mean_and_se(pd.Series([0.1, 0.3, 0.2, 0.0]))
    assert mean == pytest.approx(0.15)
    assert se == pytest.approx(np.std([0.1, 0.3, 0.2, 0.0], ddof=1) / 2)
    m1, s1 = mean_and_se(pd.Series([0.2]))
    assert m1 == pytest.approx(0.2) and np.isnan(s1)
    m0, s0 = mean_and_se(pd.Series([], dtype=float))
    assert np.isnan(m0) and np.isnan(s0)


def test_oos_ic_scores_every_realized_label():
    preds = pd.DataFrame({"date": ["a"] * 4 + ["b"] * 4, "prediction": [1, 2, 3, 4, 4, 3, 2, 1.0],
                          "fwd": [1, 2, 3, 4, 1, 2, 3, 4.0], "fwd_ok": [True, True, False, True] * 2})
    mean, se, days = oos_ic(preds, "fwd")
    assert days == 2 and mean == pytest.approx(0.0) and se == pytest.approx(1.0)


def test_seed_spread_reads_every_member_in_seed_order():
    n = 5
    base = pd.DataFrame({"date": np.repeat(["a", "b"], n), "y": np.tile(np.arange(n, dtype=float), 2)})
    members = {"prediction_seed0": np.tile(np.arange(n, dtype=float), 2),          # IC +1
               "prediction_seed2": np.tile(np.arange(n, dtype=float)[::-1], 2),    # IC -1
               "prediction_seed10": np.tile([0, 1, 2, 4, 3.0], 2)}                 # IC 0.9
    out = seed_ic_spread(base.assign(**members, prediction=0.0), "y")
    assert out["seeds"] == 3
    assert out["ic_by_seed"] == [1.0, -1.0, 0.9]  # seed 10 after seed 2
    assert out["ic_seed_mean"] == pytest.approx(round((1 - 1 + 0.9) / 3, 4))
    assert out["ic_seed_spread"] == pytest.approx(round(float(np.std([1, -1, 0.9], ddof=1)), 4))


def test_seed_spread_of_one_member_is_undefined():
    base = pd.DataFrame({"date": ["a"] * 4, "y": [1, 2, 3, 4.0], "prediction_seed0": [1, 2, 3, 4.0]})
    out = seed_ic_spread(base, "y")
    assert out["seeds"] == 1 and out["ic_seed_mean"] == 1.0 and np.isnan(out["ic_seed_spread"])
    none = seed_ic_spread(base.drop(columns="prediction_seed0"), "y")
    assert none["seeds"] == 0 and np.isnan(none["ic_seed_mean"])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 300))
def test_newey_west_without_lags_is_the_iid_standard_error(seed, n):
    from cnn_pipelines.trading.evaluation.metrics import mean_and_se, newey_west_se

    x = pd.Series(np.random.default_rng(seed).normal(size=n))
    assert np.isclose(newey_west_se([x], lags=0), mean_and_se(x)[1])
    halves = [x.iloc[: n // 2], x.iloc[n // 2:]]
    assert np.isclose(newey_west_se(halves, lags=0), mean_and_se(x)[1])  # blocks pool their days


def test_newey_west_widens_for_persistent_ics_and_keeps_markets_apart():
    """The audit's null-market ICs: adjacent days share a price and a month's model, so the naive s.e. is too
    small by about sqrt((1 + rho) / (1 - rho)) for AR(1) persistence rho; separate markets (blocks) add no
    covariance at their seams."""
    from cnn_pipelines.trading.evaluation.metrics import mean_and_se, newey_west_se

    rng = np.random.default_rng(7)
    e = rng.normal(size=40_000)
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, len(e)):
        x[t] = 0.5 * x[t - 1] + e[t]
    ratio = newey_west_se([pd.Series(x)], lags=40) / mean_and_se(pd.Series(x))[1]
    assert 1.6 < ratio < 1.8  # sqrt(3) = 1.73
    a, b = np.r_[np.zeros(50), 5.0], np.r_[5.0, np.zeros(50)]  # a large value on each side of the seam
    assert newey_west_se([a, b], lags=1) < newey_west_se([np.r_[a, b]], lags=1)
    assert np.isnan(newey_west_se([np.array([1.0])]))


def test_newey_west_on_a_hand_computed_series():
    """x = 1, 2, 4, 3: deviations -1.5, -0.5, 1.5, 0.5; gamma0 = 5, gamma1 = 0.75, gamma2 = -2.5. Bartlett
    weights 1 - l / (L + 1); var = (gamma0 + 2 sum w gamma_l) n / (n - 1) / n^2."""
    from cnn_pipelines.trading.evaluation.metrics import newey_west_se

    x = [np.array([1, 2, 4, 3])]
    assert newey_west_se(x, lags=1) == pytest.approx(np.sqrt((5 + 2 * 0.5 * 0.75) * 4 / 3) / 4)
    assert newey_west_se(x, lags=2) == pytest.approx(np.sqrt((5 + 2 * (2 / 3) * 0.75 + 2 * (1 / 3) * -2.5) * 4 / 3) / 4)
    assert newey_west_se([np.array([1.0, 3.0])], lags=0) == pytest.approx(1.0)          # two days are enough
    assert newey_west_se([pd.Series([1.0, None, 3.0], dtype=object)], lags=0) == pytest.approx(1.0)  # gaps drop


def test_newey_west_default_lags_follow_the_rule_of_thumb():
    """4 (n / 100)^(2/9) lags, rounded down: 9 for 3,850 days (the rule gives 9.003 there)."""
    from cnn_pipelines.trading.evaluation.metrics import newey_west_se

    rng = np.random.default_rng(3)
    x = np.convolve(rng.normal(size=3850 + 11), np.ones(12) / 12, mode="valid")  # autocorrelated to lag 11
    assert len(x) == 3850 and int(4 * (3850 / 100) ** (2 / 9)) == 9
    chosen = newey_west_se([x])
    assert chosen == newey_west_se([x], lags=9)
    assert chosen != newey_west_se([x], lags=8) and chosen != newey_west_se([x], lags=10)

