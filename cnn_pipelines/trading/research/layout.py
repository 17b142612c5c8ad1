"""15x15 image layout: Ward clustering orders the selected families (columns) and look-back periods (rows);
a [-1, 1] scaler is fitted per cell on the training window. Both are plain data, saved as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import leaves_list, linkage

from cnn_pipelines.trading.features.indicators import feature_name
from cnn_pipelines.trading.settings import FeatureSettings


def column_for(family: str, k: int, s: FeatureSettings) -> str:
    """Panel column of family ``family`` at look-back index k (0..14): a period for technicals, a window for betas."""
    lengths = s.beta_windows if family.startswith("BETA_") else s.periods
    return feature_name(lengths[k], family)


@dataclass
class ImageLayout:
    """Grid order and per-cell scaling; ``columns[r][c]`` is the panel column shown at row r, column c."""

    families: list[str]       # image columns, in leaf order
    period_index: list[int]   # image rows: look-back indices 0..14 in leaf order
    columns: list[list[str]]
    lo: list[list[float]]
    hi: list[list[float]]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ImageLayout":
        """Read a layout back from a document that may carry other keys (period, cutoff, checkpoints)."""
        return cls(**{f.name: d[f.name] for f in fields(cls)})

    @property
    def flat_columns(self) -> list[str]:
        return [c for row in self.columns for c in row]


def _standardize(x: np.ndarray) -> np.ndarray:
    mu = np.nanmean(x, axis=0)
    sd = np.nanstd(x, axis=0)
    sd[sd == 0] = 1.0
    return np.nan_to_num((x - mu) / sd)


def ward_order(vectors: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Leaf order (optimal ordering) of a Ward clustering of the row vectors, and the linkage matrix."""
    z = linkage(vectors, method="ward", optimal_ordering=True)
    return [int(i) for i in leaves_list(z)], z


def fit_layout(train: pd.DataFrame, families: list[str], s: FeatureSettings, quantile: float,
               max_rows: int = 5000, seed: int = 0) -> tuple[ImageLayout, np.ndarray, np.ndarray]:
    """Fit the grid order and the scaler on training rows only. Returns the layout and both linkages."""
    n_len = len(s.periods)
    rows = train.sample(min(max_rows, len(train)), random_state=seed) if len(train) > max_rows else train
    # cube[sample, family, look-back]
    cube = np.stack([np.stack([_standardize(rows[[column_for(f, k, s)]].to_numpy(float))[:, 0]
                               for k in range(n_len)], axis=1) for f in families], axis=1)
    fam_order, z_cols = ward_order(cube.transpose(1, 0, 2).reshape(len(families), -1))
    per_order, z_rows = ward_order(cube.transpose(2, 0, 1).reshape(n_len, -1))
    return scaled_layout(train, [families[i] for i in fam_order], per_order, s, quantile), z_cols, z_rows


def scaled_layout(train: pd.DataFrame, families: list[str], period_index: list[int], s: FeatureSettings,
                  quantile: float) -> ImageLayout:
    """The grid in the given order, with its per-cell [-1, 1] scaler fitted on ``train``."""
    grid = [[column_for(f, k, s) for f in families] for k in period_index]
    lo, hi = [], []
    for row in grid:
        vals = train[row].to_numpy(float)
        lo.append([float(v) for v in np.nanquantile(vals, quantile, axis=0)])
        hi.append([float(v) for v in np.nanquantile(vals, 1 - quantile, axis=0)])
    return ImageLayout(list(families), [int(i) for i in period_index], grid, lo, hi)


def to_images(features: pd.DataFrame, layout: ImageLayout) -> np.ndarray:
    """(n, 15, 15, 1) float32 images in [-1, 1]; missing values sit at 0. The only image builder: training
    batches, validation and the stored test images all come from here."""
    x = features[layout.flat_columns].to_numpy(np.float64)
    lo = np.asarray(layout.lo, dtype=np.float64).ravel()
    hi = np.asarray(layout.hi, dtype=np.float64).ravel()
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = np.clip(2 * (x - lo) / span - 1, -1, 1)
    scaled = np.nan_to_num(scaled, nan=0.0)
    side = len(layout.columns)
    return scaled.reshape(len(x), side, len(layout.columns[0]), 1).astype(np.float32)
