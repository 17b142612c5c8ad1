"""Training-throughput benchmark: the book's loop (one ``fit`` per epoch at batch 64 on raw returns,
``predict`` on the validation set every epoch) against ours (``cnn.train_period``: tf.data pipeline, the
configured batch, cross-sectional z-score labels, checkpoint + validation IC per epoch), same images, same
epochs, same run. Validation IC is the best epoch's mean daily Spearman IC on raw forward returns.

    .venv/bin/python benchmarks/training.py --train 50000 --val 10000 --epochs 3

Prints a table; the last line is a JSON object with ratio, samples_per_s, reference_samples_per_s, both
validation ICs, the model's FLOPs per sample and the fraction of this CPU's fp32 peak reached.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
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


def images(n_train: int, n_val: int):
    from cnn_pipelines.layout import fit_layout, to_images
    from cnn_pipelines.market import MarketConfig, SyntheticMarket
    from cnn_pipelines.panel import forward_returns_table, indicator_panel_table
    from cnn_pipelines.research import cross_sectional_score
    from cnn_pipelines.settings import FeatureSettings, ResearchSettings

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


def book_loop(x, y, xv, yv, dv, epochs: int, seed: int):
    import keras

    from cnn_pipelines.cnn import build_cnn, daily_ic
    from cnn_pipelines.settings import ResearchSettings

    keras.utils.set_random_seed(seed)
    model = build_cnn(ResearchSettings(steps_per_execution=1))  # the book: one batch per step
    ics, train_s = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=True)
        train_s += time.perf_counter() - t0
        ics.append(daily_ic(dv, model.predict(xv, verbose=0)[:, 0], yv).mean())
    return len(x) * epochs / train_s, max(ics)


def ours(x, y, xv, yv, dv, epochs: int, seed: int, batch: int):
    from cnn_pipelines.cnn import fingerprint, train_period
    from cnn_pipelines.settings import ResearchSettings

    s = ResearchSettings(epochs=epochs, seed=seed, batch_size=batch)
    with tempfile.TemporaryDirectory() as d:
        res = train_period(x, y, xv, yv, dv, s, Path(d) / "p", fingerprint(y, config={"b": batch}), log=lambda m: None)
    return res.samples_per_s, float(res.epochs["val_ic"].max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=50_000)
    ap.add_argument("--val", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None, help="our batch size (default: the research config)")
    args = ap.parse_args()
    from cnn_pipelines.cnn import FLOPS_PER_SAMPLE_FORWARD
    from cnn_pipelines.settings import ResearchSettings

    batch = args.batch or ResearchSettings().batch_size
    x, y_book, y_ours, xv, yv, dv = images(args.train, args.val)
    print(f"images: {len(x):,} train, {len(xv):,} validation; {args.epochs} epochs each", flush=True)
    ref_sps, ref_ic = book_loop(x, y_book, xv, yv, dv, args.epochs, seed=1)
    our_sps, our_ic = ours(x, y_ours, xv, yv, dv, args.epochs, seed=1, batch=batch)
    flops_train = 3 * FLOPS_PER_SAMPLE_FORWARD  # forward + backward (~2x forward)
    peak, peak_desc = cpu_peak_gflops()
    table = pd.DataFrame({
        "samples_per_s": [ref_sps, our_sps], "best_val_ic": [ref_ic, our_ic],
        "GFLOP/s": [ref_sps * flops_train / 1e9, our_sps * flops_train / 1e9],
        "share_of_peak": [ref_sps * flops_train / 1e9 / peak, our_sps * flops_train / 1e9 / peak],
    }, index=["book loop (batch 64)", f"ours (tf.data, batch {batch})"])
    print(table.round(4).to_markdown())
    print(f"\nFLOPs per training sample ~{flops_train / 1e6:.2f} M (forward {FLOPS_PER_SAMPLE_FORWARD / 1e6:.2f} M); "
          f"fp32 peak {peak:.0f} GFLOP/s ({peak_desc})")
    print(json.dumps({"ratio": round(our_sps / ref_sps, 2), "samples_per_s": round(our_sps, 1),
                      "reference_samples_per_s": round(ref_sps, 1), "val_ic": round(our_ic, 4),
                      "reference_val_ic": round(ref_ic, 4), "flops_per_sample": flops_train,
                      "peak_fraction": round(our_sps * flops_train / 1e9 / peak, 4), "batch_size": batch}))


if __name__ == "__main__":
    main()
