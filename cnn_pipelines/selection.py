"""Feature-family selection by mutual information with the forward return, fitted inside a training window.

The book uses scikit-learn's k-nearest-neighbour estimator (``mutual_info_regression``), which takes minutes
for 100k x 300. We estimate MI from a joint histogram of quantile bins: every column and the target are
cut into ``bins`` equally populated bins and MI = sum p(x,y) log(p(x,y) / (p(x) p(y))), all columns in one
``bincount``. With the same bins for every column the estimator's bias is the same for every feature, so the
ranking, which is all selection uses, is preserved (benchmarks/selection.py compares the rankings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnn_pipelines.panel import family_of


def quantile_bins(x: np.ndarray, bins: int) -> np.ndarray:
    """Per column, the equal-frequency bin index (0..bins-1) of each value (ties share a bin)."""
    n = x.shape[0]
    order = np.argsort(x, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n)[:, None].repeat(x.shape[1], axis=1), axis=0)
    # ties: give equal values the bin of their first occurrence so identical values never split
    sorted_x = np.take_along_axis(x, order, axis=0)
    first = np.maximum.accumulate(np.where(np.vstack([np.ones((1, x.shape[1]), bool), sorted_x[1:] != sorted_x[:-1]]),
                                           np.arange(n)[:, None], 0), axis=0)
    tied_rank = np.empty_like(ranks)
    np.put_along_axis(tied_rank, order, first, axis=0)
    return np.minimum(tied_rank * bins // n, bins - 1).astype(np.int64)


def binned_mutual_information(x: np.ndarray, y: np.ndarray, bins: int = 16) -> np.ndarray:
    """MI (nats) between each column of ``x`` (n x p, finite) and ``y`` (n, finite)."""
    n, p = x.shape
    bx = quantile_bins(x, bins)
    by = quantile_bins(y[:, None], bins)[:, 0]
    idx = (np.arange(p)[None, :] * bins * bins + bx * bins + by[:, None]).ravel()
    joint = np.bincount(idx, minlength=p * bins * bins).reshape(p, bins, bins) / n
    px = joint.sum(axis=2, keepdims=True)
    py = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (px * py)), 0.0)
    return terms.sum(axis=(1, 2))


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """A sorted random subset of row indices (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def rank_families(features: pd.DataFrame, target: np.ndarray, bins: int) -> pd.DataFrame:
    """MI per column and its family mean, sorted best first. Rows with any missing value are dropped."""
    x = features.to_numpy(dtype=np.float64)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(target)
    if ok.sum() < 10 * bins:
        raise ValueError(f"only {int(ok.sum())} complete training rows for mutual information (need >= {10 * bins})")
    mi = pd.Series(binned_mutual_information(x[ok], target[ok], bins), index=features.columns)
    fam = mi.groupby(family_of, sort=False).mean().sort_values(ascending=False)
    return pd.DataFrame({"family": fam.index, "mutual_information": fam.to_numpy(), "rank": np.arange(1, len(fam) + 1)})
