"""Wall time per test month with the `full` preset's research settings (500 names, 60-month windows with 12
validation months, 100k-row MI samples, up to 30 epochs), before and after the walk-forward levers.

A month at full size costs its fitting (selection, layout, images) plus its epochs. Both are measured here
on one full-size month: the fitting once, and ``--measure-epochs`` epochs of each training loop (the book's
``book_epochs`` from ``benchmarks/training.py`` at batch 64, and ours, ``cnn.train_period``, whose epoch
time includes validation and the checkpoint). The epoch counts come from the measured walk-forward
benchmark (``benchmarks/walkforward.py``): the book's procedure always trains all ``epochs``; ours trains them
all in a study's first month (from scratch) and, once warm-started, ``--steady-epochs`` per month (its mean
over the warm-started months of that run).

    .venv/bin/python benchmarks/full_month.py --steady-epochs 4.0      # about 15 minutes on 2 cores

Last line: JSON with the measured parts and the seconds per month before, after (first month) and after
(steady state).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--first-period", default="2019-01-01")
    ap.add_argument("--measure-epochs", type=int, default=2, help="epochs of each loop timed on the full month")
    ap.add_argument("--steady-epochs", type=float, default=4.0,
                    help="epochs per warm-started month, from benchmarks/walkforward.py (measured: 4.0)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's 30 (toy runs)")
    ap.add_argument("--train-months", type=int, default=None, help="override the preset's 60 (toy runs)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    from cnn_pipelines.trading.prices.calendar import trading_calendar
    from cnn_pipelines.trading.research.cnn import train_period
    from cnn_pipelines.trading.research.periods import fit_fold
    from cnn_pipelines.trading.research.walkforward import fold_for
    from cnn_pipelines.trading.settings import RESEARCH_PRESETS
    from training import book_epochs
    from walkforward import device_name, market

    rs = RESEARCH_PRESETS["full"]
    months = args.train_months or rs.train_months
    rs = dataclasses.replace(rs, epochs=args.epochs or rs.epochs, train_months=months,
                             val_months=min(rs.val_months, months // 3))
    t0 = time.perf_counter()
    fs, panel, targets = market(args.names, args.first_period, 1, rs.train_months, 0.15, seed=12)
    print(f"device: {device_name()}; {panel['ticker'].nunique()} names, {len(panel):,} feature rows "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)
    t0 = time.perf_counter()
    fitted = fit_fold(panel, targets, fold_for(args.first_period, rs, trading_calendar(fs.calendar)), fs, rs, 1, "p")
    fit_s = time.perf_counter() - t0
    n, n_val = len(fitted.arrays[0]), len(fitted.arrays[2])
    print(f"fitting one month (selection, layout, images): {fit_s:.0f}s; {n:,} training and {n_val:,} validation "
          f"images", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ref = list(book_epochs(*fitted.arrays, epochs=args.measure_epochs, seed=1, ckpt=Path(tmp) / "book"))
        book_s = float(np.median([r["seconds"] for r in ref]))
        print(f"book loop: {[round(r['seconds'], 1) for r in ref]} s per epoch", flush=True)
        res = train_period(*fitted.arrays, dataclasses.replace(rs, epochs=args.measure_epochs), Path(tmp) / "ours",
                           "fp", log=lambda m: print(m, flush=True))
        ours_s = float(res.epochs["seconds"].median())
    before = fit_s + rs.epochs * book_s
    first = fit_s + rs.epochs * ours_s
    steady = fit_s + min(args.steady_epochs, rs.epochs) * ours_s
    print(f"per month: before {before / 60:.1f} min ({rs.epochs} book epochs); after: first month "
          f"{first / 60:.1f} min ({rs.epochs} epochs), each further month {steady / 60:.1f} min "
          f"({args.steady_epochs:g} epochs) -> {before / steady:.1f}x", flush=True)
    print(json.dumps({
        "device": device_name(), "names": int(panel["ticker"].nunique()), "train_months": rs.train_months,
        "training_images": n, "validation_images": n_val, "fit_seconds": round(fit_s, 1),
        "book_seconds_per_epoch": round(book_s, 1), "ours_seconds_per_epoch": round(ours_s, 1),
        "epochs": rs.epochs, "steady_epochs": args.steady_epochs,
        "before_seconds_per_month": round(before), "after_first_month_seconds": round(first),
        "after_steady_month_seconds": round(steady), "ratio_steady": round(before / steady, 2),
        "ratio_first": round(before / first, 2)}))


if __name__ == "__main__":
    main()
