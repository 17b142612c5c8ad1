"""Every feature family matches its reference per ticker to 1e-9 (relative; absolute near zero), on random
data and on edge cases (flat prices, missing bars, listings and delistings inside the window)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.features.factors import rolling_betas
from cnn_pipelines.trading.features.indicators import TECHNICAL_FAMILIES, technical_features
from cnn_pipelines.trading.features.wide import to_wide

from cnn_pipelines_tests.trading.features.feature_refs import edge_case_prices, gap_filled, lstsq_betas, ta_reference, talib_formula_reference

PERIODS = [6, 11, 20]
RTOL, ATOL = 1e-9, 1e-10


@pytest.fixture(scope="module")
def computed():
    prices = edge_case_prices()
    bars = to_wide(prices)
    feats = technical_features(bars.high, bars.low, bars.close, bars.volume, PERIODS)
    return prices, bars, feats


def assert_matches(ours: np.ndarray, ref: np.ndarray, label: str) -> None:
    ref = np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape, label
    nan_ours, nan_ref = np.isnan(ours), np.isnan(ref)
    assert (nan_ours == nan_ref).all(), f"{label}: NaN pattern differs at rows {np.nonzero(nan_ours != nan_ref)[0][:10]}"
    np.testing.assert_allclose(ours[~nan_ours], ref[~nan_ref], rtol=RTOL, atol=ATOL, err_msg=label)


def test_all_families_present(computed):
    _, _, feats = computed
    assert len(feats) == 15 * len(PERIODS)
    assert {k.split("_", 1)[1] for k in feats} == set(TECHNICAL_FAMILIES)


@pytest.mark.parametrize("ticker", ["T0", "T1", "T2", "T3", "T4", "T5"])
def test_matches_ta_and_talib_formulas_per_ticker(computed, ticker):
    prices, bars, feats = computed
    j = bars.tickers.get_loc(ticker)
    ref_frame = gap_filled(prices, ticker)
    rows = bars.dates.get_indexer(ref_frame.index)
    assert (rows >= 0).all()
    # outside the ticker's listed span every feature is NaN
    outside = np.setdiff1d(np.arange(len(bars.dates)), rows)
    for name, arr in feats.items():
        assert np.isnan(arr[outside, j]).all(), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in PERIODS:
            refs = {k: v.to_numpy() for k, v in ta_reference(ref_frame, n).items()}
            refs.update(talib_formula_reference(ref_frame, n))
            assert set(refs) == set(TECHNICAL_FAMILIES)
            tp = ((ref_frame["high"] + ref_frame["low"] + ref_frame["close"]) / 3).to_numpy()
            constant = pd.Series(tp).rolling(n).apply(lambda w: float((w == w[-1]).all()), raw=True).to_numpy() == 1
            # ta's CCI on a constant window is 0/0 or 0/tiny depending on float rounding; ours is 0
            refs["CCI"] = np.where(constant, 0.0, refs["CCI"])
            for fam, ref in refs.items():
                assert_matches(feats[f"{n:02d}_{fam}"][rows, j], ref, f"{ticker} {n:02d}_{fam}")


def test_flat_stretch_gives_defined_values(computed):
    prices, bars, feats = computed
    j = bars.tickers.get_loc("T0")
    flat_end = bars.dates.get_loc(pd.Timestamp(prices[prices["ticker"] == "T0"]["date"].iloc[140]))
    assert feats["06_BBH"][flat_end, j] == 0.0 and feats["06_BBL"][flat_end, j] == 0.0  # zero band width
    assert feats["06_CCI"][flat_end, j] == 0.0
    assert feats["06_ROC"][flat_end, j] == 0.0 and feats["06_MOM"][flat_end, j] == 0.0
    assert np.isnan(feats["06_WILLR"][flat_end, j])  # 0 / 0 range, as in ta


def test_betas_match_per_window_least_squares():
    rng = np.random.default_rng(3)
    T, N, K = 160, 5, 5
    f = rng.standard_normal((T, K)) * 0.01
    y = f @ rng.standard_normal((K, N)) + 0.01 * rng.standard_normal((T, N))
    y[rng.uniform(size=(T, N)) < 0.04] = np.nan   # scattered gaps
    y[:70, 1] = np.nan                            # lists mid-window
    y[120:, 2] = np.nan                           # delists
    y[40:60, 3] = 0.0123                          # flat returns
    f[90, 2] = np.nan                             # a missing factor day
    ours = rolling_betas(y, f, [15, 40, 85])
    for w, b in ours.items():
        ref = lstsq_betas(y, f, w)
        assert_matches(b.reshape(T, -1), ref.reshape(T, -1), f"beta w={w}")
        assert np.isfinite(b).any()


def test_singular_design_gives_nan_not_garbage():
    T, N = 60, 2
    f = np.zeros((T, 5))
    f[:, 0] = np.linspace(-0.01, 0.01, T)  # other factors constant zero: X'X singular
    y = np.random.default_rng(0).standard_normal((T, N)) * 0.01
    assert np.isnan(rolling_betas(y, f, [20])[20]).all()
