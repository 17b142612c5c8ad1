"""Price-file ingestion benchmark: a folder of per-ticker vendor CSVs read by the `files` source
(`read_price_files`: dialect sniffing, column names, session dates, splits, the range cut) against pandas' plain
`read_csv` of the same files, the floor any reader pays. Every raw_prices run reads the whole folder, so this is
the fixed cost of each nightly run and each partition run of a backfill.

    .venv/bin/python benchmarks/ingest.py                          # 500 tickers x 5,000 days (~2 minutes)
    .venv/bin/python benchmarks/ingest.py --tickers 50 --days 500  # quick

Two date layouts: ISO dates (`2020-01-02`, most vendors; parsed in C) and US dates with a time of day
(`01/02/2020 16:00:00`, read through the regexes that decide day/month order and offsets). Same files, same
run, same machine; best of 2 runs each. Goal: ISO dates at most 3x the plain read.

Then the same bars as one HDF5 store, as the book keeps Quandl's WIKI prices in `assets.h5` (fixed format,
indexed by date and ticker, sorted by date): the range read, and the files' first day, last day and tickers
(asked at every load of the definitions), against a read of the whole store through the same reader, which is
what both cost before a store was read by range. Goal: both below 0.5x. And the folder's first day, last day
and tickers as the next process gets them (kept on disk per file) against reading the folder for them. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vision import cpu_name  # noqa: E402

from cnn_pipelines.trading.prices.sources import (EARLIEST, LATEST, price_files_summary,  # noqa: E402
                                                  read_price_files)

LAYOUTS = {"iso": "%Y-%m-%d", "us_time": "%m/%d/%Y 16:00:00"}
GOAL = 3.0
STORE_GOAL = 0.5  # a range of the store, and its summary, against the whole store read


def write_folder(folder: Path, tickers: int, days: int, date_format: str, seed: int = 0) -> int:
    """Per-ticker CSVs as vendors write them (Date, OHLC, Adj Close, Volume); returns the rows written."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2000-01-03", periods=days).strftime(date_format)
    for i in range(tickers):
        close = 50 * np.exp(rng.normal(0, 0.02, days).cumsum())
        pd.DataFrame({"Date": dates, "Open": close * 1.002, "High": close * 1.01, "Low": close * 0.99, "Close": close,
                      "Adj Close": close * 0.98, "Volume": rng.integers(10**5, 10**7, days)}).to_csv(
            folder / f"T{i:04d}.csv", index=False, float_format="%.4f")
    return tickers * days


def write_store(folder: Path, source: Path) -> Path:
    """The folder's per-ticker CSVs as one store like the book's assets.h5 (key quandl/wiki/prices)."""
    folder.mkdir(parents=True)
    frames = [pd.read_csv(f).assign(ticker=f.stem) for f in sorted(source.iterdir())]
    wiki = pd.concat(frames).rename(columns=str.lower).rename(columns={"adj close": "adj_close"})
    wiki["date"] = pd.to_datetime(wiki["date"])
    store = folder / "assets.h5"
    wiki.set_index(["date", "ticker"]).sort_index().to_hdf(store, key="quandl/wiki/prices")
    return store


def best_of(fn, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=5000, help="weekdays of history per ticker")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ingest_bench_"))
    last = pd.bdate_range("2000-01-03", periods=args.days)[-1]
    start = (last - pd.DateOffset(months=3)).date()  # a nightly or partition run keeps a short range
    result: dict = {"cpu": f"{cpu_name()}, {os.cpu_count()} cores", "load": os.getloadavg()[0],
                    "tickers": args.tickers, "days": args.days}
    try:
        print(f"{'dates':<10}{'rows':>12}{'read_csv s':>12}{'ours s':>9}{'ratio':>8}{'kept':>9}")
        for name, fmt in LAYOUTS.items():
            folder = root / name
            rows = write_folder(folder, args.tickers, args.days, fmt)
            files = sorted(folder.iterdir())
            plain = best_of(lambda: [pd.read_csv(f) for f in files])
            kept = {}
            ours = best_of(lambda: kept.update(n=len(read_price_files(str(folder), start, last.date()))))
            ratio = ours / plain
            print(f"{name:<10}{rows:>12,}{plain:>12.2f}{ours:>9.2f}{ratio:>8.2f}{kept['n']:>9,}")
            result.update({f"{name}_rows": rows, f"{name}_read_csv_s": round(plain, 3), f"{name}_ours_s": round(ours, 3),
                           f"{name}_ratio": round(ratio, 2), f"{name}_kept_rows": kept["n"]})
        cache = root / "cache.json"
        price_files_summary(str(root / "iso"), cache=cache)  # what the first load of the definitions leaves
        cold = best_of(lambda: price_files_summary(str(root / "iso")))
        warm = best_of(lambda: price_files_summary(str(root / "iso"), cache=cache))
        print(f"first day, last day and tickers of the ISO folder: read {cold:.2f} s, kept from an earlier process "
              f"{warm:.3f} s ({warm / cold:.3f}x)")
        result.update({"folder_summary_read_s": round(cold, 3), "folder_summary_kept_s": round(warm, 4),
                       "folder_summary_ratio": round(warm / cold, 4)})
        store = write_store(root / "store", root / "iso")
        plain = best_of(lambda: read_price_files(str(store.parent), EARLIEST, LATEST))
        kept = {}
        ranged = best_of(lambda: kept.update(n=len(read_price_files(str(store.parent), start, last.date()))))
        summary = best_of(lambda: price_files_summary(str(store.parent)))
        print(f"{'store':<10}{'rows':>12}{'whole s':>12}{'range s':>9}{'ratio':>8}{'kept':>9}"
              f"{'summary s':>11}{'ratio':>8}")
        print(f"{'assets.h5':<10}{result['iso_rows']:>12,}{plain:>12.2f}{ranged:>9.2f}{ranged / plain:>8.2f}"
              f"{kept['n']:>9,}{summary:>11.2f}{summary / plain:>8.2f}")
        result.update({"store_whole_s": round(plain, 3), "store_range_s": round(ranged, 3),
                       "store_range_ratio": round(ranged / plain, 2), "store_kept_rows": kept["n"],
                       "store_summary_s": round(summary, 3), "store_summary_ratio": round(summary / plain, 2)})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["goal_met"] = bool(result["iso_ratio"] <= GOAL and result["store_range_ratio"] <= STORE_GOAL
                              and result["store_summary_ratio"] <= STORE_GOAL)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
