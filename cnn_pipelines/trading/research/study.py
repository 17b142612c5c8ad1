"""A walk-forward study over consecutive test months in one process, with the research levers: features
joined once, images built once per period, warm starts with early stopping, a retrain cadence, and bf16
where the hardware has it. The research assets run the same steps one period at a time; the walk-forward
benchmark and the tests run this loop."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.storage import objects
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.research.layout import ImageLayout, to_images
from cnn_pipelines.trading.research.periods import fit_fold, period_data
from cnn_pipelines.trading.research.precision import bf16_support, keep_bf16
from cnn_pipelines.trading.research.retraining import (
    layout_signature, previous_retrain, retrain_period, warm_start_source,
)
from cnn_pipelines.trading.research.walkforward import fold_for
from cnn_pipelines.trading.settings import FeatureSettings, ResearchSettings


@dataclass
class PeriodResult:
    period: str
    model_period: str          # the retrain period whose model predicted this month
    started_from: str          # warm start source or why from scratch ("" when not retrained)
    epochs_trained: int
    stopped_early: bool
    ensemble: list[int]
    test_ic: float
    test_days: int
    seconds: float


def train_config(rs: ResearchSettings, period: str, seed: int, init: Path | None, dtype: str) -> dict:
    """What a period's checkpoints are fingerprinted with: settings, period, seed, warm start source, dtype."""
    source = None
    if init is not None:  # the source's own fingerprint: a retrained predecessor means a different start
        state = json.loads((Path(init).parent / "state.json").read_text())
        source = f"{Path(init).parent.name}/{Path(init).name}/{state.get('fingerprint')}"
    settings = {k: v for k, v in dataclasses.asdict(rs).items() if k != "seeds"}  # a member trains alike however
    return settings | {"period": period, "seed": seed, "init": source, "dtype": dtype}  # many others there are


def _by_cpu(saved: dict) -> dict[str, dict]:
    """precision.json's decisions per CPU kind (a file from before the cluster held one kind's: where, decisions)."""
    if "cpus" in saved:
        return dict(saved["cpus"])
    return {saved["where"]: saved.get("decisions", {})} if "where" in saved else {}


def choose_precision(arrays: tuple, rs: ResearchSettings, models_root: Path, seed: int,
                     log: Callable[[str], None] = print, trial_epochs: int = 2,
                     period: str = "") -> tuple[str, str]:
    """("float32" or "mixed_bfloat16", why) for ``period``: bf16 is tried only where the hardware has it, and kept
    when a short trial's validation IC (on ``arrays``, the period's own fold, all before its cutoff) is within
    noise of fp32's. Point in time: a period reuses the decision of the latest period at or before it (whose data
    all lay before its own cutoff, so before this one's); a period earlier than every decision on record (a
    backfill that ran a later month first) decides afresh. Decisions are kept in precision.json, per CPU kind, and
    added to it by read-merge-write, so machines deciding at once keep each other's."""
    if rs.precision == "fp32":
        return "float32", "fp32: precision setting"
    ok, where = bf16_support()
    if not ok:
        return "float32", f"fp32: {where}"
    record = Path(models_root) / "precision.json"
    objects.pull(record)  # decisions made on other machines of a cluster (kept per CPU kind: ``where``)
    saved = json.loads(record.read_text()) if record.exists() else {}
    decisions = _by_cpu(saved).get(where, {})
    usable = [p for p in decisions if p <= period]
    if usable:
        chosen = decisions[max(usable)]
        return chosen["dtype"], f"{chosen['why']} (decided on {max(usable)})"
    from cnn_pipelines.trading.research.cnn import train_period

    trial = dataclasses.replace(rs, epochs=trial_epochs)
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "mixed_bfloat16"):
            t0 = time.perf_counter()
            res = train_period(*arrays, trial, Path(tmp) / dtype, dtype, log=lambda m: None, dtype=dtype)
            best = res.epochs.sort_values("val_ic").iloc[-1]
            scores[dtype] = (float(best["val_ic"]), float(best["val_ic_se"]), time.perf_counter() - t0)
    (f_ic, f_se, f_s), (b_ic, b_se, b_s) = scores["float32"], scores["mixed_bfloat16"]
    keep = keep_bf16(f_ic, f_se, b_ic, b_se)
    why = (f"{'bf16' if keep else 'fp32'} on {where}: {trial_epochs}-epoch trial, validation IC fp32 {f_ic:+.4f} "
           f"(s.e. {f_se:.4f}, {f_s:.1f}s) vs bf16 {b_ic:+.4f} (s.e. {b_se:.4f}, {b_s:.1f}s)")
    log(why)
    from cnn_pipelines.storage.lake import update_json

    dtype = "mixed_bfloat16" if keep else "float32"

    def add(saved: dict) -> dict:  # merged with decisions other machines wrote meanwhile, not overwriting them
        cpus = _by_cpu(saved)
        cpus[where] = cpus.get(where, {}) | {period: {"dtype": dtype, "why": why}}
        return {"cpus": cpus}

    update_json(record, add)
    return dtype, f"{why} (decided on {period})"


def walk_forward(panel: pd.DataFrame, targets: pd.DataFrame, periods: list[str], fs: FeatureSettings,
                 rs: ResearchSettings, models_root: Path, seed: int = 1,
                 log: Callable[[str], None] = print) -> tuple[pd.DataFrame, list[PeriodResult]]:
    """Train and predict ``periods`` (consecutive months) in order; returns the out-of-sample predictions
    (date, ticker, period, prediction, target) and one result per period. ``rs.warm_start`` False and
    ``rs.retrain_every`` 1 is the book's procedure with our training loop."""
    from cnn_pipelines.trading.research.cnn import fingerprint, predict_ensemble, train_period

    calendar = trading_calendar(fs.calendar)
    first = periods[0]
    layouts: dict[str, ImageLayout] = {}
    ensembles: dict[str, list[int]] = {}
    results, preds = [], []
    dtype = None
    for period in periods:
        t0 = time.perf_counter()
        fold = fold_for(period, rs, calendar)
        anchor = retrain_period(period, first, rs.retrain_every)
        started, trained, stopped, ensemble = "", 0, False, []
        if anchor == period:
            previous = previous_retrain(period, first, rs.retrain_every, rs.warm_chains)
            fitted = fit_fold(panel, targets, fold, fs, rs, seed, f"period {period}",
                              layouts.get(previous) if rs.warm_start else None)
            data, layout = fitted.data, fitted.layout
            if dtype is None:
                dtype, why = choose_precision(fitted.arrays, rs, models_root, seed, log, period=period)
            init, started = (warm_start_source(models_root, previous, period, layout) if rs.warm_start
                             else (None, "from scratch: warm start off"))
            fp = fingerprint(*fitted.arrays[:4], config=train_config(rs, period, seed, init, dtype))
            res = train_period(*fitted.arrays, dataclasses.replace(rs, seed=seed), models_root / period, fp,
                               log=lambda m: None, init=init, patience=rs.patience if init is not None else None,
                               dtype=dtype, state_extra={"layout": layout_signature(layout), "started_from": started})
            layouts[period], ensembles[period] = layout, res.ensemble
            trained, stopped, ensemble = res.trained_epochs, res.stopped_early, res.ensemble
        else:
            data, layout, ensemble = period_data(panel, targets, fold, rs, calendar), layouts[anchor], ensembles[anchor]
        test = data.frame.loc[data.test]
        pred = predict_ensemble(models_root / anchor, ensemble, to_images(test, layout))
        out = test[["date", "ticker", rs.target]].assign(period=period, prediction=pred.astype(np.float32))
        preds.append(out)
        ic, _, days = oos_ic(out, rs.target)
        results.append(PeriodResult(period, anchor, started, trained, stopped, ensemble, ic, days,
                                    time.perf_counter() - t0))
        log(f"{period}: model {anchor}, {trained} epochs{' (stopped early)' if stopped else ''}, "
            f"test IC {results[-1].test_ic:+.4f}, {results[-1].seconds:.1f}s; {started}")
    return pd.concat(preds, ignore_index=True), results

