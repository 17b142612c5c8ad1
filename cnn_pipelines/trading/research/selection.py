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

from cnn_pipelines.trading.features.panel import family_of


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


MIN_COVERAGE = 0.5  # a family whose least-covered column is missing in more rows than this is left out


def family_coverage(features: pd.DataFrame, target: np.ndarray) -> pd.Series:
    """Per family, the smallest share of rows with a realized target in which one of its columns is present."""
    has_target = np.isfinite(target)
    share = pd.Series(np.isfinite(features.to_numpy(np.float64)[has_target]).mean(axis=0) if has_target.any()
                      else np.zeros(features.shape[1]), index=features.columns)
    return share.groupby(family_of, sort=False).min()


def rank_families(features: pd.DataFrame, target: np.ndarray, bins: int) -> pd.DataFrame:
    """MI per column and its family mean, sorted best first, over the families this sample can support.

    A family that cannot be computed for the universe at hand (factor betas with too few names for the
    tercile portfolios, a look-back longer than the history) covers fewer than ``MIN_COVERAGE`` of the rows:
    it is left out (``available`` False, no MI, ranked last) instead of emptying every row. MI uses the rows
    complete over the available families.
    """
    coverage = family_coverage(features, target)
    usable = coverage[coverage >= MIN_COVERAGE].index
    cols = [c for c in features.columns if family_of(c) in set(usable)]
    x = features[cols].to_numpy(dtype=np.float64)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(target)
    if len(usable) < 2 or ok.sum() < 10 * bins:
        raise ValueError(f"only {int(ok.sum())} complete training rows over {len(usable)} computable feature families "
                         f"for mutual information (need >= {10 * bins} rows and 2 families); family coverage: "
                         f"{coverage.round(3).to_dict()}")
    mi = pd.Series(binned_mutual_information(x[ok], target[ok], bins), index=cols)
    fam = mi.groupby(family_of, sort=False).mean().sort_values(ascending=False)
    left_out = coverage.drop(fam.index)
    out = pd.DataFrame({"family": [*fam.index, *left_out.index],
                        "mutual_information": [*fam.to_numpy(), *[np.nan] * len(left_out)],
                        "rank": np.arange(1, len(coverage) + 1),
                        "available": [True] * len(fam) + [False] * len(left_out),
                        "coverage": [*coverage[fam.index].to_numpy(), *left_out.to_numpy()]})
    out.attrs["complete_rows"] = int(ok.sum())
    return out
