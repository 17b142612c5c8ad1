"""Walk-forward benchmark: the book's procedure against ours over consecutive test months, same run, same market.

- Reference (the book's ``07_cnn_for_trading.ipynb`` procedure, per period): selection, clustering and scaler
  fitted on the period's window, a network trained from scratch for a fixed number of epochs at batch 64
  from NumPy arrays (``fit`` with validation data, ``save_weights`` and the validation IC every epoch:
  ``benchmarks/training.py``'s ``book_epochs``), the top-k validation-IC epochs averaged on the test month.
- Ours (``research.study.walk_forward``, the steps the research assets run): the same fitting, the training
  loop of ``cnn.train_epochs`` (tf.data, batch 256, a checkpoint per epoch), warm starts from the previous
  month's best checkpoint with early stopping on validation IC (a family at the margin of the selection stays
  within a buffer, and the grid order is kept, so the image stays the same), and bf16 where the hardware has it.
- Also measured: ours with a retrain every 3 months (the cadence lever) and the time the research assets
  spent rebuilding each period's joined window and images once per asset before (the no-repeated-work lever).

Both train on the same labels (the day's cross-sectional z-scores) and are scored the same way: the mean of
the daily rank IC of the test months' predictions against the realized ``fwd_open_1d``, over all test days.

    .venv/bin/python benchmarks/walkforward.py                  # 100 names, 24-month windows, 6 months, 20 epochs

Last line: JSON with ratio (reference wall time / ours), ic, reference_ic, ic_se, periods, epochs_trained,
reference_epochs_trained, the per-lever ratios, and ours' IC by seed (``--seeds``, default 3) with its spread
across seeds (ic_seed_spread: how much of the IC is training noise, to read beside ic_se).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # noqa: BLE001 - informational only
        return platform.processor() or "unknown CPU"


def device_name() -> str:
    """The GPU Keras trains on (and its backend), else the CPU."""
    import keras

    from cnn_pipelines.trading.research.precision import gpu_details

    gpus = gpu_details()
    return f"{gpus[0].get('device_name', 'GPU')} (Keras {keras.backend.backend()})" if gpus else cpu_name()


def market(names: int, first_period: str, periods: int, train_months: int, signal: float, seed: int):
    from cnn_pipelines.trading.features.panel import forward_returns_table, indicator_panel_table
    from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
    from cnn_pipelines.trading.settings import FeatureSettings

    fs = FeatureSettings(universe_size=names)
    first = pd.Timestamp(first_period)
    feat_start = first - pd.DateOffset(months=train_months + 1)
    inception = feat_start - pd.DateOffset(years=1)
    end = first + pd.DateOffset(months=periods) + pd.Timedelta(days=20)
    m = SyntheticMarket(MarketConfig(seed=seed, n_tickers=int(names * 1.1), inception=str(inception.date()),
                                     signal_strength=signal, late_listing_share=0.1, delisting_share=0.05))
    prices = m.prices(inception.date(), end.date())
    panel = indicator_panel_table(prices, fs, feat_start.date(), end.date())
    targets = forward_returns_table(prices, fs, feat_start.date(), end.date())
    return fs, panel, targets


def reference(panel, targets, periods, fs, rs, epochs: int, workdir: Path, seed: int = 1):
    """The book's procedure per period; returns (predictions, epochs trained, seconds per epoch)."""
    import keras

    from cnn_pipelines.storage.checkpoints import choose_ensemble
    from cnn_pipelines.trading.prices.calendar import trading_calendar
    from cnn_pipelines.trading.research.cnn import build_cnn, predict
    from cnn_pipelines.trading.research.layout import to_images
    from cnn_pipelines.trading.research.periods import fit_fold
    from cnn_pipelines.trading.research.walkforward import fold_for
    from training import book_epochs

    calendar = trading_calendar(fs.calendar)
    preds, trained, epoch_s = [], 0, []
    for period in periods:
        t0 = time.perf_counter()
        f = fit_fold(panel, targets, fold_for(period, rs, calendar), fs, rs, seed, f"period {period}")
        ckpt = workdir / "reference" / period
        rows = []
        for e, row in enumerate(book_epochs(*f.arrays, epochs=epochs, seed=seed, ckpt=ckpt), start=1):
            rows.append({"epoch": e, "val_ic": row["val_ic"]})
            epoch_s.append(row["seconds"])
        trained += len(rows)
        test = f.data.frame.loc[f.data.test]
        x = to_images(test, f.layout)
        model = build_cnn(rs)
        out = []
        for e in choose_ensemble(rows, rs.top_k):
            model.load_weights(ckpt / f"ckpt_{e - 1}.weights.h5")
            out.append(predict(model, x))
        preds.append(test[["date", "ticker", rs.target]].assign(period=period, prediction=np.mean(out, axis=0)))
        took = time.perf_counter() - t0
        left = (len(periods) - len(preds)) * took
        print(f"reference {period}: {len(rows)} epochs, {took:.1f}s"
              + (f"; about {left / 60:.0f} min of the reference left" if left else ""), flush=True)
        keras.backend.clear_session()
    return pd.concat(preds, ignore_index=True), trained, float(np.median(epoch_s))




def rebuild_seconds(panel, targets, period, fs, rs) -> tuple[float, float]:
    """(seconds to join a period's window and build its training images, seconds for the join alone): what
    each research asset redid before (feature_selection, image_layout, cnn_images and cnn_model joined the
    window; cnn_model, ridge and hgb built the training images)."""
    from cnn_pipelines.trading.prices.calendar import trading_calendar
    from cnn_pipelines.trading.research.periods import fit_fold, period_data, training_arrays
    from cnn_pipelines.trading.research.walkforward import fold_for

    fold = fold_for(period, rs, trading_calendar(fs.calendar))
    layout = fit_fold(panel, targets, fold, fs, rs, 1, period).layout
    t0 = time.perf_counter()
    data = period_data(panel, targets, fold, rs, trading_calendar(fs.calendar))
    join = time.perf_counter() - t0
    training_arrays(data, layout, rs)
    return time.perf_counter() - t0, join


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=100)
    ap.add_argument("--train-months", type=int, default=24)
    ap.add_argument("--val-months", type=int, default=3)
    ap.add_argument("--periods", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=20, help="the reference's fixed epochs; ours' maximum")
    ap.add_argument("--first-period", default="2019-01-01")
    ap.add_argument("--signal", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cadence", type=int, default=3, help="k of the cadence lever (0: skip it)")
    ap.add_argument("--seeds", type=int, default=3, help="runs of ours with seeds 1..N: the spread of its IC "
                                                           "across seeds, beside the s.e. over days (1: skip)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notices: each period builds its own model, as the book does

    from cnn_pipelines.trading.evaluation.metrics import oos_ic as score  # mean daily IC, s.e., days
    from cnn_pipelines.trading.research.precision import bf16_support
    from cnn_pipelines.trading.research.study import walk_forward
    from cnn_pipelines.trading.settings import ResearchSettings

    t0 = started = time.perf_counter()
    fs, panel, targets = market(args.names, args.first_period, args.periods, args.train_months, args.signal, args.seed)
    periods = [str(p.start_time.date()) for p in pd.period_range(args.first_period, periods=args.periods, freq="M")]
    print(f"device: {device_name()}; bf16: {bf16_support()[1]}", flush=True)
    print(f"market: {panel['ticker'].nunique()} names, {len(panel):,} feature rows, built in "
          f"{time.perf_counter() - t0:.1f}s; periods {periods[0]} .. {periods[-1]}", flush=True)
    rs = ResearchSettings(train_months=args.train_months, val_months=args.val_months, epochs=args.epochs, top_k=3,
                          mi_sample=20_000)
    book = dataclasses.replace(rs, warm_start=False, precision="fp32")
    timings, results = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        ref_preds, ref_epochs, ref_epoch_s = reference(panel, targets, periods, fs, book, args.epochs, work)
        timings["reference"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours_preds, ours = walk_forward(panel, targets, periods, fs, rs, work / "ours", log=lambda m: print(m, flush=True))
        timings["ours"] = time.perf_counter() - t0
        if args.cadence > 1:
            t0 = time.perf_counter()
            cad_preds, cad = walk_forward(panel, targets, periods, fs, dataclasses.replace(rs, retrain_every=args.cadence),
                                          work / "cadence", log=lambda m: print(f"cadence {m}", flush=True))
            timings["cadence"] = time.perf_counter() - t0
            results["cadence"] = (cad_preds, cad)
        seed_preds = [ours_preds]
        for s in range(2, args.seeds + 1):  # the same procedure from another seed (selection sample, weights)
            t0 = time.perf_counter()
            seed_preds.append(walk_forward(panel, targets, periods, fs, rs, work / f"ours_seed{s}", seed=s,
                                           log=lambda m: None)[0])
            print(f"ours with seed {s}: {time.perf_counter() - t0:.0f}s", flush=True)
        states = [json.loads(p.read_text()) for p in (work / "ours").glob("*/state.json")]
        our_epoch_s = float(np.median([e["seconds"] for s in states for e in s["epochs"]]))
    rebuild, join = rebuild_seconds(panel, targets, periods[-1], fs, rs)

    ic, se, days = score(ours_preds, rs.target)
    ref_ic, ref_se, _ = score(ref_preds, rs.target)
    epochs_trained = sum(r.epochs_trained for r in ours)
    ratio = timings["reference"] / timings["ours"]
    warm = sum(r.started_from.startswith("warm") for r in ours)
    levers = {
        "training_loop": round(ref_epoch_s / our_epoch_s, 2),  # per-epoch time, same rows
        "warm_start_early_stop": round(ref_epochs / max(epochs_trained, 1), 2),  # epochs
    }
    rows = [("reference (book: from scratch, fixed epochs, batch 64)", timings["reference"], ref_epochs, ref_ic, ref_se),
            ("ours (warm start + early stop, batch 256)", timings["ours"], epochs_trained, ic, se)]
    out = {"ratio": round(ratio, 2), "ic": round(ic, 4), "reference_ic": round(ref_ic, 4), "ic_se": round(se, 4),
           "reference_ic_se": round(ref_se, 4), "ic_days": days, "periods": len(periods),
           "epochs_trained": epochs_trained, "reference_epochs_trained": ref_epochs, "warm_started_periods": warm,
           "reference_seconds": round(timings["reference"], 1), "seconds": round(timings["ours"], 1),
           "goal_met": bool(ratio >= 5 and ic >= ref_ic - se)}
    if "cadence" in results:
        c_ic, c_se, _ = score(results["cadence"][0], rs.target)
        c_epochs = sum(r.epochs_trained for r in results["cadence"][1])
        rows.append((f"ours, retrain every {args.cadence} months", timings["cadence"], c_epochs, c_ic, c_se))
        levers["cadence_k"] = args.cadence
        levers["cadence_over_ours"] = round(timings["ours"] / timings["cadence"], 2)
        out |= {"cadence_ratio": round(timings["reference"] / timings["cadence"], 2), "cadence_ic": round(c_ic, 4)}
    if len(seed_preds) > 1:
        seed_ics = [score(p, rs.target)[0] for p in seed_preds]
        out |= {"seeds": len(seed_ics), "ic_by_seed": [round(v, 4) for v in seed_ics],
                "ic_seed_spread": round(float(np.std(seed_ics, ddof=1)), 4)}
        print(f"ours' IC across {len(seed_ics)} seeds: {', '.join(f'{v:+.4f}' for v in seed_ics)} "
              f"(sd {out['ic_seed_spread']:.4f}, beside the s.e. over days {se:.4f})")
    levers["rebuild_seconds_saved_per_period"] = round(3 * join + 2 * (rebuild - join), 2)
    out["levers"] = levers
    print(pd.DataFrame(rows, columns=["procedure", "seconds", "epochs", "mean OOS IC", "IC s.e."])
          .round(4).to_markdown(index=False))
    print("\nper period (ours):")
    print(pd.DataFrame([dataclasses.asdict(r) for r in ours]).round(4).to_markdown(index=False))
    print(f"\nlevers: training loop {levers['training_loop']}x per epoch (median {ref_epoch_s:.2f}s vs "
          f"{our_epoch_s:.2f}s); epochs {levers['warm_start_early_stop']}x ({ref_epochs} vs {epochs_trained}); "
          f"no repeated work: {levers['rebuild_seconds_saved_per_period']}s per period in the assets "
          f"(joining the window {join:.2f}s, images {rebuild - join:.2f}s)")
    out["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"device: {device_name()}; whole benchmark {out['total_seconds'] / 60:.1f} min "
          f"(the reference alone {timings['reference'] / 60:.1f} min)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
