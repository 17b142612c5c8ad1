"""Walk-forward CNN research: purged folds, point-in-time fitting, signal recovery vs the null market, resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.evaluation.audit import AUDIT_FEATURES, AUDIT_RESEARCH, audit_ic, audit_passes, fit_period
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.research.cnn import fingerprint, make_dataset, predict_ensemble, train_period
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
from cnn_pipelines.trading.features.panel import forward_returns_table, indicator_panel_table
from cnn_pipelines.trading.research.walkforward import fold_for, split_masks

FS, RS = AUDIT_FEATURES, AUDIT_RESEARCH
CAL = trading_calendar(FS.calendar)


def test_fold_is_purged_and_labels_are_realized_before_use():
    fold = fold_for("2016-07-01", RS, CAL)
    # the default label (next open to the open after) is realized 2 sessions after its date; + 4 of embargo
    assert RS.target == "fwd_open_1d" and RS.horizon == 2 and RS.purge_days == 6
    assert fold.cutoff == pd.Timestamp("2016-06-23").date()  # 6 sessions before July 1st
    assert fold.train_start == pd.Timestamp("2015-10-01").date() and fold.val_start == pd.Timestamp("2016-05-01").date()
    days = pd.bdate_range("2015-09-01", "2016-08-31")
    dates = pd.Series(days)
    train, val = split_masks(dates, days, fold, horizon=5)
    assert pd.Timestamp(dates[train].max()) + pd.offsets.BDay(5) < pd.Timestamp(fold.val_start)
    assert pd.Timestamp(dates[val].max()) + pd.offsets.BDay(5) < pd.Timestamp(fold.cutoff)
    assert not (train & val).any() and dates[train].min() >= pd.Timestamp(fold.train_start)
    with pytest.raises(ValueError, match="first day of a month"):
        fold_for("2016-07-02", RS, CAL)


def _fitted(panel, targets, period):
    ranking, layout, arrays, fp, data = fit_period(panel, targets, period, FS, RS)
    return ranking, layout, fp, data, arrays


def test_nothing_fitted_for_a_period_sees_data_from_its_cutoff_on():
    prices = SyntheticMarket(MarketConfig(seed=4, n_tickers=30, inception="2015-01-01")).prices("2015-01-01", "2016-12-31")
    period = "2016-07-01"
    cutoff = pd.Timestamp(fold_for(period, RS, CAL).cutoff)

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


def test_planted_signal_is_recovered_and_null_market_is_zero(tmp_path):
    planted = audit_ic(0.35, fs=FS, rs=RS, workdir=tmp_path)
    null = audit_ic(0.0, fs=FS, rs=RS, workdir=tmp_path)
    print(f"planted: {planted}\nnull: {null}")
    assert planted["ic"] > 2 * planted["se"] and planted["ic"] > 0.03
    assert planted["oracle_ic"] > planted["ic"]  # the model cannot beat the truth
    assert abs(null["ic"]) < 2 * null["se"]
    ok, why = audit_passes(null, planted, max_se=0.05)  # the miniature's 2 months cannot reach the audit's 0.015
    assert ok, why
    assert not audit_passes(dict(null, ic=5 * null["se"]), planted, max_se=0.05)[0]  # the audit can fail


def _toy_training_data(n: int, seed: int):
    """Random images whose label is the centre pixel plus noise, and 20 validation dates of 10 names each."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 15, 15, 1)).astype(np.float32)
    y = (x[:, 7, 7, 0] * 0.01 + rng.normal(0, 0.01, n)).astype(np.float32)
    return x, y, np.repeat(pd.bdate_range("2020-01-01", periods=20).to_numpy(), 10)


def test_training_resumes_after_the_last_completed_epoch_and_skips_completed_periods(tmp_path):
    x, y, dates = _toy_training_data(600, seed=0)
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


def test_training_batches_cover_every_row_once_per_epoch_in_a_new_seeded_order():
    x = np.arange(1000, dtype=np.float32).reshape(-1, 1, 1, 1) * np.ones((1, 15, 15, 1), np.float32)
    y = np.arange(1000, dtype=np.float32)

    def epochs(seed):
        ds = make_dataset(x, y, 64, seed)
        return [np.concatenate([yb.numpy() for _, yb in ds]) for _ in range(2)]

    first, second = epochs(7)
    for order in (first, second):
        assert sorted(order) == list(range(1000))  # every row exactly once
    for xb, yb in make_dataset(x, y, 64, 7).take(3):
        assert (xb.numpy()[:, 7, 7, 0] == yb.numpy()).all()  # images stay paired with their labels
    assert (first != second).any()  # reshuffled each epoch
    assert (first == epochs(7)[0]).all()  # the seed fixes the order
    assert (first != epochs(8)[0]).any()


def test_a_seed_makes_training_reproducible(tmp_path):
    x, y, dates = _toy_training_data(800, seed=1)

    def run(name, seed):
        s = dataclasses.replace(RS, epochs=2, seed=seed)
        res = train_period(x, y, x[:200], y[:200].astype(float), dates, s, tmp_path / name, "fp", log=lambda m: None)
        return res.epochs["loss"].to_numpy(), predict_ensemble(tmp_path / name, res.ensemble, x[:100])

    (loss_a, pred_a), (loss_b, pred_b), (loss_c, pred_c) = run("a", 3), run("b", 3), run("c", 4)
    np.testing.assert_array_equal(loss_a, loss_b)
    np.testing.assert_array_equal(pred_a, pred_b)
    assert not np.array_equal(pred_a, pred_c)


def test_importing_the_package_makes_tensorflow_train_on_onednn_kernels():
    # TF skips oneDNN's convolutions on AVX2 CPUs unless asked; the Eigen fallback trains 2x slower.
    code = ("import cnn_pipelines, numpy as np, tensorflow as tf\n"
            "x = tf.constant(np.ones((4, 15, 15, 16), np.float32)); k = tf.constant(np.ones((3, 3, 16, 32), np.float32))\n"
            "tf.function(lambda a: tf.nn.conv2d(a, k, 1, 'SAME'))(x)\n")
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "primitive,exec,cpu,convolution" in out.stdout + out.stderr


_TRAIN_CHILD = """
import sys, dataclasses
from pathlib import Path
import numpy as np
import cnn_pipelines
from cnn_pipelines.trading.evaluation.audit import AUDIT_RESEARCH
from cnn_pipelines.trading.research.cnn import train_period
d = np.load(sys.argv[1])
s = dataclasses.replace(AUDIT_RESEARCH, epochs=int(sys.argv[3]))
train_period(d["x"], d["y"], d["x"][:200], d["y"][:200].astype(float), d["dates"], s, Path(sys.argv[2]), "fp",
             log=lambda m: None)
"""


def test_a_killed_training_process_resumes_from_its_last_checkpoint(tmp_path):
    x, y, dates = _toy_training_data(4000, seed=2)
    np.savez(tmp_path / "data.npz", x=x, y=y, dates=dates)
    ckpt, epochs = tmp_path / "ckpt", 8
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN_CHILD, str(tmp_path / "data.npz"), str(ckpt), str(epochs)])
    deadline = time.time() + 240
    state = ckpt / "state.json"
    while not (state.exists() and len(json.loads(state.read_text())["epochs"]) >= 2):
        assert proc.poll() is None and time.time() < deadline, "training ended before the kill point"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(json.loads(state.read_text())["epochs"])
    assert 2 <= done < epochs, f"the child finished {done} epochs before the kill"
    logs = []
    s = dataclasses.replace(RS, epochs=epochs)
    res = train_period(x, y, x[:200], y[:200].astype(float), dates, s, ckpt, "fp", log=logs.append)
    assert logs[0] == f"resuming after epoch {done} of {epochs}"
    assert res.trained_epochs == epochs - done and list(res.epochs["epoch"]) == list(range(1, epochs + 1))
    assert sorted(p.name for p in ckpt.glob("epoch_*.keras")) == [f"epoch_{e:02d}.keras" for e in range(1, epochs + 1)]


@pytest.mark.parametrize("names", [1, 2, 3])
def test_a_period_with_fewer_than_three_names_a_day_is_refused_before_training(names):
    """A one- or two-ticker universe trained a CNN whose epoch was 'chosen' on validation ICs that were all NaN
    (a rank correlation needs three names), then failed in evaluation with 'No objects to concatenate'."""
    from cnn_pipelines.trading.research.periods import PeriodData, require_rows

    days = pd.bdate_range("2020-09-01", periods=240)  # enough rows for the row rule with one name
    frame = pd.DataFrame({"date": np.repeat(days, names), "ticker": np.tile([f"T{i}" for i in range(names)], 240)})
    last = frame["date"] >= days[200]
    data = PeriodData(frame, (~last).to_numpy(), last.to_numpy(), np.zeros(len(frame), bool))
    fold = fold_for("2021-07-01", RS, trading_calendar("XNYS"))
    if names < 3:
        with pytest.raises(ValueError, match=rf"at most {names} name\(s\) a day in the validation window"):
            require_rows(data, "period 2021-07-01", fold)
    else:
        require_rows(data, "period 2021-07-01", fold)
