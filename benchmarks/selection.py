"""Feature-selection benchmark: scikit-learn's kNN mutual_info_regression (the book's way) against our
quantile-binned MI on the same 100k x 300 synthetic panel, in the same run.

    .venv/bin/python benchmarks/selection.py --rows 100000

Prints a table; the last line is a JSON object with ratio, rank_correlation (Spearman, between the two
family rankings) and top15_overlap.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from scipy import stats


def panel_sample(rows: int, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
    from cnn_pipelines.trading.features.panel import feature_columns, forward_returns_table, indicator_panel_table
    from cnn_pipelines.trading.settings import FeatureSettings

    tickers = 80
    days = int(rows / (0.9 * tickers)) + 400
    fs = FeatureSettings(universe_size=tickers)
    m = SyntheticMarket(MarketConfig(seed=seed, n_tickers=tickers, inception="2000-01-03", late_listing_share=0.0,
                                     delisting_share=0.0))
    end = pd.bdate_range("2000-01-03", periods=days)[-1]
    prices = m.prices("2000-01-03", end)
    start = pd.bdate_range("2000-01-03", periods=400)[-1]
    panel = indicator_panel_table(prices, fs, start, end)
    targets = forward_returns_table(prices, fs, start, end)
    frame = panel.merge(targets, on=["date", "ticker"])
    cols = feature_columns(fs)
    frame = frame[np.isfinite(frame[cols].to_numpy(float)).all(axis=1) & frame["fwd_1d_ok"]]
    frame = frame.sample(min(rows, len(frame)), random_state=seed)
    return frame[cols], frame["fwd_1d"].to_numpy(float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bins", type=int, default=16)
    args = ap.parse_args()
    from sklearn.feature_selection import mutual_info_regression

    from cnn_pipelines.trading.features.panel import family_of
    from cnn_pipelines.trading.research.selection import binned_mutual_information

    x, y = panel_sample(args.rows)
    print(f"sample: {x.shape[0]:,} rows x {x.shape[1]} features", flush=True)
    t0 = time.perf_counter()
    ours = binned_mutual_information(x.to_numpy(float), y, args.bins)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = mutual_info_regression(x.to_numpy(float), y, random_state=0)
    ref_s = time.perf_counter() - t0
    fam = pd.DataFrame({"ours": ours, "sklearn": ref}, index=x.columns).groupby(family_of).mean()
    rho = stats.spearmanr(fam["ours"], fam["sklearn"])[0]
    top_ours = set(fam["ours"].nlargest(15).index)
    top_ref = set(fam["sklearn"].nlargest(15).index)
    table = fam.rank(ascending=False).astype(int).sort_values("sklearn")
    print(table.rename(columns={"ours": "rank (ours)", "sklearn": "rank (sklearn)"}).to_markdown())
    print(f"\nsklearn mutual_info_regression: {ref_s:.1f}s   ours (binned, {args.bins} bins): {ours_s:.2f}s   "
          f"ratio {ref_s / ours_s:.0f}x   family rank correlation {rho:.3f}   top-15 overlap {len(top_ours & top_ref)}/15")
    print(json.dumps({"rows": int(x.shape[0]), "features": int(x.shape[1]), "reference_seconds": round(ref_s, 2),
                      "ours_seconds": round(ours_s, 3), "ratio": round(ref_s / ours_s, 1),
                      "rank_correlation": round(float(rho), 3), "top15_overlap": len(top_ours & top_ref)}))


if __name__ == "__main__":
    main()
