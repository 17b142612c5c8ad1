"""Wall time per test month with the `full` preset's research settings (500 names, 60-month windows with 12
validation months, 100k-row MI samples, up to 30 epochs), before and after the walk-forward levers.

- After (measured): ``research.study.walk_forward`` over two consecutive months: the first trains from scratch
  for all epochs (as any study's first month does), the second is a steady-state month (warm start, early
  stopping) - what each further month of a long study costs.
- Before (the book's procedure: from scratch, all epochs at batch 64 from NumPy arrays): the fitting of the
  month (selection, layout, images) is measured, and the training part is extrapolated from
  ``--reference-epochs`` measured epochs of ``benchmarks/training.py``'s ``book_epochs`` on that month's arrays.

    .venv/bin/python benchmarks/full_month.py            # about 40 minutes on 2 cores

Last line: JSON with seconds per month (before, after first month, after steady state) and the epochs.
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--first-period", default="2019-01-01")
    ap.add_argument("--reference-epochs", type=int, default=3, help="book epochs measured (then extrapolated)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's 30 (toy runs)")
    ap.add_argument("--train-months", type=int, default=None, help="override the preset's 60 (toy runs)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    from cnn_pipelines.trading.prices.calendar import trading_calendar
    from cnn_pipelines.trading.research.periods import fit_fold
    from cnn_pipelines.trading.research.study import walk_forward
    from cnn_pipelines.trading.research.walkforward import fold_for
    from cnn_pipelines.trading.settings import RESEARCH_PRESETS
    from training import book_epochs
    from walkforward import device_name, market

    rs = RESEARCH_PRESETS["full"]
    rs = dataclasses.replace(rs, epochs=args.epochs or rs.epochs, train_months=args.train_months or rs.train_months,
                             val_months=min(rs.val_months, (args.train_months or rs.train_months) // 3))
    periods = [str(p.start_time.date()) for p in pd.period_range(args.first_period, periods=2, freq="M")]
    t0 = time.perf_counter()
    fs, panel, targets = market(args.names, periods[0], 2, rs.train_months, 0.15, seed=12)
    print(f"device: {device_name()}; {panel['ticker'].nunique()} names, {len(panel):,} feature rows "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fitted = fit_fold(panel, targets, fold_for(periods[0], rs, trading_calendar(fs.calendar)), fs, rs, 1, "p")
        fit_s = time.perf_counter() - t0
        n = len(fitted.arrays[0])
        print(f"fitting one month (selection, layout, images): {fit_s:.0f}s; {n:,} training images", flush=True)
        ref = list(book_epochs(*fitted.arrays, epochs=args.reference_epochs, seed=1, ckpt=Path(tmp) / "book"))
        book_epoch_s = float(np.median([r["seconds"] for r in ref]))
        before = fit_s + rs.epochs * book_epoch_s
        print(f"book: {book_epoch_s:.0f}s per epoch (median of {len(ref)}) -> {before / 60:.1f} min per month "
              f"at {rs.epochs} epochs", flush=True)
        del fitted
        _, results = walk_forward(panel, targets, periods, fs, rs, Path(tmp) / "ours",
                                  log=lambda m: print(m, flush=True))
    first, steady = results
    out = {"device": device_name(), "names": args.names, "train_months": rs.train_months, "training_images": n,
           "before_seconds_per_month": round(before, 0), "book_seconds_per_epoch": round(book_epoch_s, 1),
           "after_first_month_seconds": round(first.seconds, 0), "after_steady_month_seconds": round(steady.seconds, 0),
           "first_month_epochs": first.epochs_trained, "steady_month_epochs": steady.epochs_trained,
           "steady_started_from": steady.started_from[:80],
           "ratio_steady": round(before / steady.seconds, 2), "ratio_first": round(before / first.seconds, 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
