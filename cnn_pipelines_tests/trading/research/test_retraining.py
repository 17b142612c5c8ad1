"""Warm starts, the retrain cadence and the walk-forward study: a warm start only ever reads an earlier period's
checkpoint and only onto the same image grid; each month is predicted by the newest model fitted at or before
its own retrain period; and with every lever on, nothing fitted for a period sees prices from its cutoff on."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.storage.checkpoints import epoch_path
from cnn_pipelines.trading.evaluation.audit import AUDIT_FEATURES, AUDIT_RESEARCH
from cnn_pipelines.trading.features.panel import forward_returns_table, indicator_panel_table
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
from cnn_pipelines.trading.research.layout import ImageLayout
from cnn_pipelines.trading.research.precision import bf16_support, keep_bf16
from cnn_pipelines.trading.research.retraining import (
    WarmStartNotReadyError, layout_signature, previous_retrain, retrain_period, warm_start_source,
)
from cnn_pipelines.trading.research.walkforward import fold_for

FS = AUDIT_FEATURES
CAL = trading_calendar("synthetic")
FAMILIES = ["RSI", "WILLR", "BBH"]


def _layout(families=FAMILIES, rows=(2, 0, 1)) -> ImageLayout:
    return ImageLayout(list(families), list(rows), [[f"{f}_{r}" for f in families] for r in rows],
                       [[0.0] * len(families)] * len(rows), [[1.0] * len(families)] * len(rows))


def _trained(root, period: str, layout: ImageLayout, val_ics=(0.01, 0.05, 0.02)) -> None:
    d = root / period
    d.mkdir(parents=True)
    for e in range(1, len(val_ics) + 1):
        epoch_path(d, e).write_bytes(b"model")
    (d / "state.json").write_text(json.dumps({"fingerprint": period, "layout": layout_signature(layout),
                                              "epochs": [{"epoch": e, "val_ic": v} for e, v in
                                                         enumerate(val_ics, start=1)]}))


def test_a_warm_start_reads_the_last_epoch_of_the_earlier_period_and_never_a_later_one(tmp_path):
    """Issue 29: the start was the earlier period's best-validation epoch (epoch 2 here), chosen on a validation
    window that overlaps this period's: epoch choice and early stopping then re-used a holdout. The start is
    the last finished epoch, which no validation IC picked."""
    _trained(tmp_path, "2016-06-01", _layout())
    _trained(tmp_path, "2016-08-01", _layout(), val_ics=(0.09, 0.2, 0.3))  # later and better: must not be used
    path, why = warm_start_source(tmp_path, "2016-06-01", "2016-07-01", _layout())
    assert path == epoch_path(tmp_path / "2016-06-01", 3) and "2016-06-01, its last epoch 3" in why
    with pytest.raises(ValueError, match="only an earlier period"):
        warm_start_source(tmp_path, "2016-08-01", "2016-07-01", _layout())
    with pytest.raises(ValueError, match="only an earlier period"):
        warm_start_source(tmp_path, "2016-07-01", "2016-07-01", _layout())
    for k in (1, 2, 3, 5):  # the cadence arithmetic only ever points back in time
        for period in pd.date_range("2016-01-01", periods=14, freq="MS").strftime("%Y-%m-%d"):
            prev = previous_retrain(period, "2016-01-01", k)
            assert prev is None or prev < retrain_period(period, "2016-01-01", k) <= period


def test_a_layout_change_forces_a_fresh_start_and_says_why(tmp_path):
    _trained(tmp_path, "2016-06-01", _layout())
    path, why = warm_start_source(tmp_path, "2016-06-01", "2016-07-01", _layout(["RSI", "BBH", "WILLR"]))
    assert path is None and "column order changed" in why
    path, why = warm_start_source(tmp_path, "2016-06-01", "2016-07-01", _layout(["RSI", "CCI", "BBH"]))
    assert path is None and "selected families changed (out: WILLR; in: CCI)" in why
    path, why = warm_start_source(tmp_path, "2016-06-01", "2016-07-01", _layout(rows=(0, 1, 2)))
    assert path is None and "look-back order changed" in why
    with pytest.raises(WarmStartNotReadyError, match="2016-07-01 warm-starts from the model of 2016-05-01"):
        warm_start_source(tmp_path, "2016-05-01", "2016-07-01", _layout())
    assert warm_start_source(tmp_path, None, "2016-07-01", _layout())[0] is None
    # the scaler is refitted on every window and does not change the grid: still a warm start
    rescaled = dataclasses.replace(_layout(), lo=[[-5.0] * 3] * 3)
    assert warm_start_source(tmp_path, "2016-06-01", "2016-07-01", rescaled)[0] is not None


def test_cadence_predicts_each_month_with_the_newest_retrain_at_or_before_it():
    months = pd.date_range("2016-01-01", periods=7, freq="MS").strftime("%Y-%m-%d").tolist()
    assert [retrain_period(m, months[0], 3) for m in months] == [months[0]] * 3 + [months[3]] * 3 + [months[6]]
    assert [retrain_period(m, months[0], 1) for m in months] == months
    for m in months:
        anchor = retrain_period(m, months[0], 3)
        assert fold_for(anchor, AUDIT_RESEARCH, CAL).cutoff <= fold_for(m, AUDIT_RESEARCH, CAL).cutoff
    with pytest.raises(ValueError, match="before the first research period"):
        retrain_period("2015-12-01", months[0], 3)


def test_bf16_is_used_only_where_the_hardware_has_it_and_kept_only_if_ic_holds():
    assert bf16_support("flags\t: fpu avx2 fma", gpus=[])[0] is False
    assert bf16_support("flags\t: fpu avx512f avx512_bf16", gpus=[]) == (True, "CPU with avx512_bf16")
    assert bf16_support("flags\t: amx_bf16 amx_tile", gpus=[])[0] is True
    assert bf16_support("", gpus=[{"compute_capability": (9, 0), "device_name": "H100"}])[0] is True
    assert bf16_support("flags\t: avx512_bf16", gpus=[{"compute_capability": (7, 5)}])[0] is False  # the GPU trains
    assert keep_bf16(0.05, 0.01, 0.045, 0.01) and not keep_bf16(0.05, 0.01, 0.03, 0.01)


def _tables(prices):
    return (indicator_panel_table(prices, FS, "2015-09-01", "2016-11-30"),
            forward_returns_table(prices, FS, "2015-09-01", "2016-11-30"))


@pytest.mark.timeout(600)
def test_with_every_lever_on_nothing_fitted_for_a_period_sees_prices_from_its_cutoff_on(tmp_path):
    from cnn_pipelines.trading.research.study import walk_forward

    periods = ["2016-09-01", "2016-10-01", "2016-11-01"]
    rs = dataclasses.replace(AUDIT_RESEARCH, epochs=2, retrain_every=2, warm_start=True, patience=1)
    prices = SyntheticMarket(MarketConfig(seed=4, n_tickers=30, inception="2015-01-01")).prices("2015-01-01",
                                                                                                "2016-12-31")
    cutoff = pd.Timestamp(fold_for(periods[-1], rs, CAL).cutoff)
    rng = np.random.default_rng(0)

    def perturbed(since):
        px = prices.copy()
        mask = pd.to_datetime(px["date"]) >= since
        for col in ("open", "high", "low", "close"):
            px.loc[mask, col] *= np.exp(rng.normal(0, 0.1, mask.sum()))
        return px

    def fitted(px, name):
        preds, results = walk_forward(*_tables(px), periods, FS, rs, tmp_path / name, log=lambda m: None)
        states = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / name).glob("*/state.json")}
        return preds, results, states

    _, base, states = fitted(prices, "base")
    # cadence 2: October is predicted by September's model; November retrains, warm-started from September
    assert [r.model_period for r in base] == ["2016-09-01", "2016-09-01", "2016-11-01"]
    assert base[1].epochs_trained == 0 and sorted(states) == ["2016-09-01", "2016-11-01"]
    started = states["2016-11-01"]["started_from"]
    assert started.startswith("warm start from 2016-09-01") or "from scratch: image layout differs" in started
    # prices changed from November's cutoff on: every input, label, layout and warm-start source is the same
    _, after, after_states = fitted(perturbed(cutoff), "after")
    assert {p: s["fingerprint"] for p, s in states.items()} == {p: s["fingerprint"] for p, s in after_states.items()}
    assert [r.started_from for r in base] == [r.started_from for r in after]
    # the same change a week before the cutoff reaches November's training rows: the test can fail
    _, _, earlier = fitted(perturbed(cutoff - pd.Timedelta(days=7)), "earlier")
    assert earlier["2016-11-01"]["fingerprint"] != states["2016-11-01"]["fingerprint"]
    assert earlier["2016-09-01"]["fingerprint"] == states["2016-09-01"]["fingerprint"]


def test_the_precision_choice_for_a_period_never_saw_a_later_period(tmp_path, monkeypatch):
    """Issue 29: bf16 vs fp32 was decided once per models folder on whichever period ran first, so a backfill
    that ran June first chose March's precision on June's data. A period now reuses only a decision made on a
    period at or before it; an earlier period decides on its own fold's arrays."""
    from types import SimpleNamespace

    import cnn_pipelines.trading.research.cnn as cnn
    import cnn_pipelines.trading.research.study as study
    from cnn_pipelines.trading.settings import ResearchSettings

    seen = []

    def fake_train(x_tr, y_tr, x_va, y_va, d_va, rs, folder, fp, log=None, dtype="float32", **kw):
        seen.append((int(x_tr[0]), dtype))
        ic = 0.05 if dtype == "float32" else 0.049
        return SimpleNamespace(epochs=pd.DataFrame({"val_ic": [ic], "val_ic_se": [0.01]}))

    monkeypatch.setattr(study, "bf16_support", lambda: (True, "a CPU with avx512_bf16"))
    monkeypatch.setattr(cnn, "train_period", fake_train)
    rs = ResearchSettings(precision="auto")
    arrays = {p: (np.array([k]), None, None, None, None) for k, p in enumerate(["2020-03-01", "2020-06-01", "2020-07-01"])}
    june = study.choose_precision(arrays["2020-06-01"], rs, tmp_path, 1, log=lambda m: None, period="2020-06-01")
    assert seen == [(1, "float32"), (1, "mixed_bfloat16")] and june[0] == "mixed_bfloat16"
    march = study.choose_precision(arrays["2020-03-01"], rs, tmp_path, 1, log=lambda m: None, period="2020-03-01")
    assert seen[2:] == [(0, "float32"), (0, "mixed_bfloat16")] and "decided on 2020-03-01" in march[1]
    july = study.choose_precision(arrays["2020-07-01"], rs, tmp_path, 1, log=lambda m: None, period="2020-07-01")
    assert len(seen) == 4 and "decided on 2020-06-01" in july[1]  # June's decision: made before July's cutoff


@settings(max_examples=60, deadline=None)
@given(every=st.integers(1, 4), chains=st.integers(1, 5), offset=st.integers(0, 40), start=st.integers(0, 30))
def test_a_retrains_warm_start_source_is_a_function_of_the_month_and_the_studys_settings(every, chains, offset, start):
    """Issue 30: with C chains a retrain starts from the retrain C cadence steps before it, never from one before
    the first research period or the study's first month (where chains begin, from scratch), and never from a
    later or the same month: the first C retrains of a study start from scratch, every later one from its
    chain's previous retrain."""
    first = "2016-01-01"
    month = (pd.Period(first, "M") + offset).start_time.strftime("%Y-%m-%d")
    chain_start = (pd.Period(first, "M") + start).start_time.strftime("%Y-%m-%d")
    anchor = retrain_period(month, first, every)
    prev = previous_retrain(month, first, every, chains, chain_start)
    if prev is None:  # the retrain C steps back would be before the first period or the chain's start
        back = pd.Period(anchor, "M") - every * chains
        assert back < pd.Period(first, "M") or back < pd.Period(chain_start, "M")
    else:
        assert (pd.Period(anchor, "M") - pd.Period(prev, "M")).n == every * chains
        assert first <= chain_start <= prev < anchor <= month
        assert retrain_period(prev, first, every) == prev
    assert previous_retrain(month, first, every, chains, None) == previous_retrain(month, first, every, chains, first)
