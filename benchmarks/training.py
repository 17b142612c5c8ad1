"""Training-throughput benchmark: the book's loop against ours, interleaved epoch by epoch in the same run.

- Book: the training cell of the book's ``07_cnn_for_trading.ipynb`` on raw (clipped) returns. Per epoch: one
  ``fit`` at batch 64 with ``validation_data`` (the model is compiled with an RMSE metric), ``save_weights``,
  ``predict`` on the validation set (Keras' default batch) and the IC per day (pandas ``groupby`` + scipy
  ``spearmanr``).
- Ours: ``cnn.train_epochs`` (the code the ``cnn_model`` asset runs): tf.data batches gathered from shuffled
  indices, the configured batch, cross-sectional z-score labels, then validation IC and a ``.keras`` checkpoint.

Both run in one process with the same TensorFlow settings (``cnn_pipelines`` turns on oneDNN's kernels).
Samples/s is training samples per second of the whole per-epoch loop: training, validation and the
checkpoint, as each loop does them; ``fit_only`` figures time the training passes alone. This 2-core VM's
speed drops by up to half for seconds at a time. The two loops therefore alternate epochs, and ``ratio``
compares each loop's fastest epoch (like ``timeit``, interference only slows a run down). The median of the
per-epoch ratios and the ratio of total times are printed beside it.

The run also measures this CPU's attainable fp32 rate, the best of a large numpy sgemm. ``ceiling_ratio`` is
what ours would reach over the reference at that rate and the model's FLOPs: no implementation can beat it.
Validation IC is the best epoch's mean daily Spearman IC on raw forward returns.

    .venv/bin/python benchmarks/training.py --train 50000 --val 10000 --epochs 6

The last line is a JSON object with ratio, samples_per_s, reference_samples_per_s, both validation ICs, the
model's FLOPs per sample and the fraction of this CPU's peak reached.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd


def cpu_peak_gflops() -> tuple[float, str]:
    """fp32 peak: cores x max clock x 32 FLOP/cycle (two 256-bit FMA units) with AVX2+FMA, 16 without."""
    cores = os.cpu_count() or 1
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    ghz = (max(mhz) / 1000) if mhz else 2.5
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 16
    return cores * ghz * per_cycle, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} FLOP/cycle"


def sgemm_gflops(n: int = 2048, repeats: int = 15) -> float:
    """Best fp32 GFLOP/s of an n x n numpy matrix product: what this CPU attains on the friendliest kernel."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def images(n_train: int, n_val: int):
    from cnn_pipelines.trading.research.layout import fit_layout, to_images
    from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
    from cnn_pipelines.trading.features.panel import forward_returns_table, indicator_panel_table
    from cnn_pipelines.trading.research.periods import cross_sectional_score
    from cnn_pipelines.trading.settings import FeatureSettings, ResearchSettings

    tickers = 80
    fs = FeatureSettings(universe_size=tickers)
    days = int((n_train + n_val) / (0.9 * tickers)) + 420
    m = SyntheticMarket(MarketConfig(seed=5, n_tickers=tickers, inception="2000-01-03", signal_strength=0.2,
                                     late_listing_share=0.0, delisting_share=0.0))
    end = pd.bdate_range("2000-01-03", periods=days)[-1]
    prices = m.prices("2000-01-03", end)
    start = pd.bdate_range("2000-01-03", periods=420)[-1]
    frame = indicator_panel_table(prices, fs, start, end).merge(forward_returns_table(prices, fs, start, end),
                                                                on=["date", "ticker"])
    frame = frame[frame["fwd_1d_ok"]].sort_values(["date", "ticker"]).reset_index(drop=True)
    tr, va = frame.iloc[:n_train], frame.iloc[-n_val:]
    fams = ["RSI", "WILLR", "BBH", "BBL", "NATR", "PPO", "MACD", "MOM", "WMA", "EMA", "CCI", "CMO", "ROC", "ADOSC", "ADX"]
    layout, _, _ = fit_layout(tr, fams, fs, ResearchSettings().scale_quantile)
    y = tr["fwd_1d"].to_numpy(np.float32)
    y_book = np.clip(y, *np.quantile(y, [0.01, 0.99])).astype(np.float32)       # the book: raw returns
    y_ours = cross_sectional_score(tr["date"], tr["fwd_1d"]).astype(np.float32)  # ours: the day's z-scores
    return (to_images(tr, layout), y_book, y_ours,
            to_images(va, layout), va["fwd_1d"].to_numpy(float), va["date"].to_numpy())


def _validation_clock():
    """A Keras callback that records when ``fit`` starts its validation pass (the end of the training part)."""
    import keras

    class Clock(keras.callbacks.Callback):
        at = float("nan")

        def on_test_begin(self, logs=None):
            self.at = time.perf_counter()

    return Clock()


def book_epochs(x, y, xv, yv, dv, epochs: int, seed: int, ckpt: Path) -> Iterator[dict]:
    """The book's loop (``07_cnn_for_trading.ipynb``), one epoch per ``next``: the model compiled with an RMSE
    metric; ``fit`` one epoch at batch 64 with ``validation_data`` (validation loss and RMSE); ``save_weights``;
    ``predict`` on validation (Keras' default batch); the IC per day with pandas ``groupby`` and scipy ``spearmanr``.
    """
    import keras
    from scipy.stats import spearmanr

    from cnn_pipelines.trading.research.cnn import build_cnn, jit_compile
    from cnn_pipelines.trading.settings import ResearchSettings

    keras.utils.set_random_seed(seed)
    s = ResearchSettings()
    model = build_cnn(s)  # the book's layers, recompiled as the book does: one batch per step, RMSE metric
    # jit_compile as in ours: off on TensorFlow (the book's TF 2.2 had no XLA by default), on for JAX.
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=s.learning_rate, momentum=s.momentum),
                  metrics=[keras.metrics.RootMeanSquaredError(name="rmse")], jit_compile=jit_compile())
    ckpt.mkdir(parents=True, exist_ok=True)
    training_done = _validation_clock()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=64, validation_data=(xv, yv), epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                  shuffle=True, callbacks=[training_done])
        fit_s = training_done.at - t0  # training only: up to the start of fit's validation pass
        model.save_weights(ckpt / f"ckpt_{epoch}.weights.h5")
        preds = pd.DataFrame({"date": dv, "actual": yv, "pred": model.predict(xv, verbose=0).squeeze()})
        ic = preds.groupby("date").apply(lambda g: spearmanr(g["actual"], g["pred"])[0], include_groups=False)
        yield {"seconds": time.perf_counter() - t0, "train_seconds": fit_s, "val_ic": float(ic.mean())}


def our_epochs(x, y, xv, yv, dv, epochs: int, seed: int, batch: int, ckpt: Path) -> Iterator[dict]:
    """Our loop, one epoch per ``next`` (``cnn.train_epochs``, checkpoints included)."""
    from cnn_pipelines.trading.research.cnn import fingerprint, train_epochs
    from cnn_pipelines.trading.settings import ResearchSettings

    s = ResearchSettings(epochs=epochs, seed=seed, batch_size=batch)
    yield from train_epochs(x, y, xv, yv, dv, s, ckpt, fingerprint(y, config={"b": batch}), log=lambda m: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=50_000)
    ap.add_argument("--val", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=None, help="our batch size (default: the research config)")
    args = ap.parse_args()
    from cnn_pipelines.trading.research.cnn import FLOPS_PER_SAMPLE_FORWARD
    from cnn_pipelines.trading.settings import ResearchSettings

    batch = args.batch or ResearchSettings().batch_size
    x, y_book, y_ours, xv, yv, dv = images(args.train, args.val)
    print(f"images: {len(x):,} train, {len(xv):,} validation; {args.epochs} epochs each, interleaved", flush=True)
    book, mine = [], []
    with tempfile.TemporaryDirectory() as d:
        loops = zip(book_epochs(x, y_book, xv, yv, dv, args.epochs, seed=1, ckpt=Path(d) / "book"),
                    our_epochs(x, y_ours, xv, yv, dv, args.epochs, seed=1, batch=batch, ckpt=Path(d) / "p"))
        for e, (b, o) in enumerate(loops, start=1):
            book.append(b)
            mine.append(o)
            print(f"epoch {e}: book {len(x) / b['seconds']:,.0f} samples/s (IC {b['val_ic']:+.4f}), "
                  f"ours {len(x) / o['seconds']:,.0f} samples/s (IC {o['val_ic']:+.4f}), "
                  f"ratio {b['seconds'] / o['seconds']:.2f}", flush=True)
    book, mine = pd.DataFrame(book), pd.DataFrame(mine)
    ref_sps, our_sps = len(x) / book["seconds"].min(), len(x) / mine["seconds"].min()
    ratio = our_sps / ref_sps
    median_ratio = float((book["seconds"] / mine["seconds"]).median())
    total_ratio = float(book["seconds"].sum() / mine["seconds"].sum())
    fit_only = [len(x) / book["train_seconds"].min(), len(x) / mine["train_seconds"].min()]
    flops_train = 3 * FLOPS_PER_SAMPLE_FORWARD  # forward + backward (~2x forward)
    nominal, nominal_desc = cpu_peak_gflops()
    attained = sgemm_gflops()
    ceiling_ratio = attained * 1e9 / flops_train / ref_sps
    table = pd.DataFrame({
        "samples_per_s": [ref_sps, our_sps], "fit_only_samples_per_s": fit_only,
        "best_val_ic": [book["val_ic"].max(), mine["val_ic"].max()],
        "GFLOP/s (fit)": [v * flops_train / 1e9 for v in fit_only],
        "share_of_sgemm_peak (fit)": [v * flops_train / 1e9 / attained for v in fit_only],
    }, index=["book loop (batch 64)", f"ours (tf.data, batch {batch})"])
    print(table.round(4).to_markdown())
    print(f"\nratio (fastest epochs) {ratio:.2f}x; median per-epoch ratio {median_ratio:.2f}x; ratio of total times "
          f"{total_ratio:.2f}x; fit only {fit_only[1] / fit_only[0]:.2f}x")
    print(f"FLOPs per training sample ~{flops_train / 1e6:.2f} M (forward {FLOPS_PER_SAMPLE_FORWARD / 1e6:.2f} M); "
          f"fp32 peak: {attained:.0f} GFLOP/s attained by sgemm, {nominal:.0f} nominal ({nominal_desc}). At the "
          f"sgemm rate this model trains at most {attained * 1e9 / flops_train:,.0f} samples/s: "
          f"{ceiling_ratio:.2f}x the reference.")
    print(json.dumps({"ratio": round(ratio, 2), "median_epoch_ratio": round(median_ratio, 2),
                      "total_time_ratio": round(total_ratio, 2), "fit_only_ratio": round(fit_only[1] / fit_only[0], 2),
                      "samples_per_s": round(our_sps, 1), "reference_samples_per_s": round(ref_sps, 1),
                      "val_ic": round(float(mine["val_ic"].max()), 4),
                      "reference_val_ic": round(float(book["val_ic"].max()), 4), "flops_per_sample": flops_train,
                      "peak_gflops": round(attained, 1), "nominal_peak_gflops": round(nominal, 1),
                      "peak_fraction": round(fit_only[1] * flops_train / 1e9 / attained, 4),
                      "ceiling_ratio": round(ceiling_ratio, 2), "batch_size": batch, "epochs": len(book)}))


if __name__ == "__main__":
    main()
