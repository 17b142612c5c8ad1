"""Walk-forward CNN research: purged folds, point-in-time fitting, signal recovery vs the null market, resume."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.cnn import daily_ic, fingerprint, predict_ensemble, train_period
from cnn_pipelines.market import MarketConfig, SyntheticMarket
from cnn_pipelines.panel import feature_columns, forward_returns_table, indicator_panel_table
from cnn_pipelines.research import fit_image_layout, period_data, select_families, training_arrays
from cnn_pipelines.layout import to_images
from cnn_pipelines.settings import FeatureSettings, ResearchSettings
from cnn_pipelines.walkforward import fold_for, split_masks

FS = FeatureSettings(universe_size=30, universe_window=20, universe_min_obs=18, factor_formation=20)
RS = ResearchSettings(train_months=9, val_months=2, mi_sample=8000, epochs=6, batch_size=128, top_k=2)


def market(strength: float, seed: int = 2) -> tuple[pd.DataFrame, pd.DataFrame, SyntheticMarket]:
    m = SyntheticMarket(MarketConfig(seed=seed, n_tickers=30, inception="2015-01-01", signal_strength=strength,
                                     late_listing_share=0.0, delisting_share=0.0))
    prices = m.prices("2015-01-01", "2016-12-31")
    panel = indicator_panel_table(prices, FS, "2015-09-01", "2016-12-31")
    targets = forward_returns_table(prices, FS, "2015-09-01", "2016-12-31")
    return panel, targets, m


def test_fold_is_purged_and_labels_are_realized_before_use():
    fold = fold_for("2016-07-01", RS)
    assert fold.cutoff == pd.Timestamp("2016-06-24").date()  # 5 weekdays before July 1st
    assert fold.train_start == pd.Timestamp("2015-10-01").date() and fold.val_start == pd.Timestamp("2016-05-01").date()
    days = pd.bdate_range("2015-09-01", "2016-08-31")
    dates = pd.Series(days)
    train, val = split_masks(dates, days, fold, horizon=5)
    assert pd.Timestamp(dates[train].max()) + pd.offsets.BDay(5) < pd.Timestamp(fold.val_start)
    assert pd.Timestamp(dates[val].max()) + pd.offsets.BDay(5) < pd.Timestamp(fold.cutoff)
    assert not (train & val).any() and dates[train].min() >= pd.Timestamp(fold.train_start)
    with pytest.raises(ValueError, match="first day of a month"):
        fold_for("2016-07-02", RS)


def _fitted(panel, targets, period):
    fold = fold_for(period, RS)
    data = period_data(panel, targets, fold, RS)
    ranking = select_families(data, feature_columns(FS), RS, seed=1)
    fams = ranking.loc[ranking["selected"], "family"].tolist()
    layout, _, _ = fit_image_layout(data, fams, FS, RS, seed=1)
    arrays = training_arrays(data, layout, RS)
    fp = fingerprint(*arrays[:4], config=dataclasses.asdict(RS))
    return ranking, layout, fp, data, arrays


def test_nothing_fitted_for_a_period_sees_data_from_its_cutoff_on():
    prices = SyntheticMarket(MarketConfig(seed=4, n_tickers=30, inception="2015-01-01")).prices("2015-01-01", "2016-12-31")
    period = "2016-07-01"
    cutoff = pd.Timestamp(fold_for(period, RS).cutoff)

    def tables(px):
        return (indicator_panel_table(px, FS, "2015-09-01", "2016-08-31"),
                forward_returns_table(px, FS, "2015-09-01", "2016-08-31"))

    base = _fitted(*tables(prices), period)
    rng = np.random.default_rng(0)

    def perturbed(mask):
        px = prices.copy()
        for col in ("open", "high", "low", "close"):
            px.loc[mask, col] *= np.exp(rng.normal(0, 0.1, mask.sum()))
        return px

    after = _fitted(*tables(perturbed(pd.to_datetime(prices["date"]) >= cutoff)), period)
    pd.testing.assert_frame_equal(base[0], after[0])            # family selection
    assert base[1].to_json() == after[1].to_json()               # grid order and [-1, 1] scaler
    assert base[2] == after[2]                                   # every training/validation image and label
    # the same perturbation one week earlier is visible: the test can fail
    earlier = _fitted(*tables(perturbed(pd.to_datetime(prices["date"]) >= cutoff - pd.Timedelta(days=7))), period)
    assert earlier[2] != base[2]


def _oos_ic(strength: float, periods=("2016-10-01", "2016-11-01"), tmp_path=None):
    panel, targets, m = market(strength)
    ics, oracle = [], []
    for period in periods:
        ranking, layout, fp, data, (x_tr, y_tr, x_va, y_va, d_va) = _fitted(panel, targets, period)
        res = train_period(x_tr, y_tr, x_va, y_va, d_va, RS, tmp_path / period, fp, log=lambda s: None)
        test = data.frame.loc[data.test & data.frame[f"{RS.target}_ok"].fillna(False).to_numpy(bool)]
        pred = predict_ensemble(tmp_path / period, res.ensemble, to_images(test, layout))
        ics.append(daily_ic(test["date"].to_numpy(), pred, test[RS.target].to_numpy()))
        er = m.expected_returns(test["date"].min(), test["date"].max())
        er["date"] = er["date"].astype(str)
        t2 = test.assign(date=test["date"].astype(str)).merge(er, on=["date", "ticker"])
        oracle.append(daily_ic(t2["date"].to_numpy(), t2["expected_return"].to_numpy(), t2[RS.target].to_numpy()))
    ic = pd.concat(ics)
    return ic.mean(), ic.std() / np.sqrt(len(ic)), pd.concat(oracle).mean()


def test_planted_signal_is_recovered(tmp_path):
    ic, se, oracle = _oos_ic(0.35, tmp_path=tmp_path)
    print(f"planted signal: OOS IC {ic:.4f} +/- {se:.4f} (oracle {oracle:.4f})")
    assert ic > 2 * se and ic > 0.03
    assert oracle > ic  # the model cannot beat the truth


def test_null_market_ic_is_indistinguishable_from_zero(tmp_path):
    ic, se, _ = _oos_ic(0.0, tmp_path=tmp_path)
    print(f"null market: OOS IC {ic:.4f} +/- {se:.4f}")
    assert abs(ic) < 2 * se


def test_training_resumes_after_the_last_completed_epoch_and_skips_completed_periods(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (600, 15, 15, 1)).astype(np.float32)
    y = (x[:, 7, 7, 0] * 0.01 + rng.normal(0, 0.01, 600)).astype(np.float32)
    dates = np.repeat(pd.bdate_range("2020-01-01", periods=20).to_numpy(), 10)
    s = dataclasses.replace(RS, epochs=4)
    fp = fingerprint(x, y, config={"t": 1})
    first = train_period(x, y, x[:200], y[:200].astype(float), dates, s, tmp_path / "p", fp, log=lambda m: None,
                         stop_after=2)  # as if the run were killed after epoch 2
    assert first.trained_epochs == 2 and sorted(p.name for p in (tmp_path / "p").glob("epoch_*.keras")) == [
        "epoch_01.keras", "epoch_02.keras"]
    logs = []
    second = train_period(x, y, x[:200], y[:200].astype(float), dates, s, tmp_path / "p", fp, log=logs.append)
    assert second.trained_epochs == 2 and list(second.epochs["epoch"]) == [1, 2, 3, 4]
    assert any("resuming after epoch 2" in m for m in logs)
    third = train_period(x, y, x[:200], y[:200].astype(float), dates, s, tmp_path / "p", fp, log=lambda m: None)
    assert third.trained_epochs == 0 and third.ensemble == second.ensemble
    state = json.loads((tmp_path / "p" / "state.json").read_text())
    assert [e["epoch"] for e in state["epochs"]] == [1, 2, 3, 4]
    changed = train_period(x, y * 2, x[:200], y[:200].astype(float), dates, s, tmp_path / "p",
                           fingerprint(x, y * 2, config={"t": 1}), log=lambda m: None)
    assert changed.trained_epochs == 4  # inputs changed: retrained from scratch
