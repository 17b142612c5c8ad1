"""Summaries of the feature tables for the UI: coverage, family correlations, universe turnover."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cnn_pipelines.trading.features.panel import family_of


def family_correlation(panel: pd.DataFrame, max_dates: int = 60) -> pd.DataFrame:
    """Average cross-sectional Spearman correlation between families (each represented by its middle
    look-back column), over up to ``max_dates`` evenly spaced dates."""
    feats = [c for c in panel.columns if c not in ("date", "ticker")]
    by_family: dict[str, list[str]] = {}
    for c in feats:
        by_family.setdefault(family_of(c), []).append(c)
    reps = {fam: cols[len(cols) // 2] for fam, cols in by_family.items()}
    dates = np.sort(panel["date"].unique())
    if len(dates) == 0:
        return pd.DataFrame()
    picked = dates[np.linspace(0, len(dates) - 1, min(max_dates, len(dates))).astype(int)]
    sub = panel[panel["date"].isin(set(picked))][["date", *reps.values()]]
    mats = []
    for _, day in sub.groupby("date"):
        x = day[list(reps.values())].rank()
        if len(x) >= 3:
            mats.append(x.corr().to_numpy())
    if not mats:
        return pd.DataFrame()
    with warnings.catch_warnings():  # a family missing for this universe (betas of 5 names) is all-NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        avg = np.nanmean(np.stack(mats), axis=0)
    return pd.DataFrame(avg, index=list(reps), columns=list(reps))


class PanelSummary:
    """NaN shares per family and the average cross-sectional family correlation of a panel that is seen one
    ticker shard at a time (each shard's correlations weighted by its names)."""

    def __init__(self) -> None:
        self.rows = 0
        self.shards = 0
        self._nan: pd.Series | None = None
        self._corr: list[tuple[int, pd.DataFrame]] = []

    def add(self, shard: pd.DataFrame) -> None:
        nan = shard.drop(columns=["date", "ticker"]).isna().sum()
        self._nan = nan if self._nan is None else self._nan + nan
        self.rows += len(shard)
        self.shards += 1
        corr = family_correlation(shard)
        if not corr.empty:
            self._corr.append((int(shard["ticker"].nunique()), corr))

    def merge(self, other: "PanelSummary") -> None:
        """Add the shards another summary saw (a worker process's), as if they had been added here."""
        if other._nan is not None:
            self._nan = other._nan if self._nan is None else self._nan + other._nan
        self.rows += other.rows
        self.shards += other.shards
        self._corr.extend(other._corr)

    def nan_share(self) -> pd.Series:
        if self._nan is None or not self.rows:
            return pd.Series(dtype=float)
        return (self._nan / self.rows).groupby(family_of, sort=False).mean()

    def correlation(self) -> pd.DataFrame:
        if not self._corr:
            return pd.DataFrame()
        first = self._corr[0][1]
        mats = np.stack([c.to_numpy() for _, c in self._corr])
        w = np.array([n for n, _ in self._corr], dtype=float)[:, None, None] * np.isfinite(mats)
        with np.errstate(invalid="ignore"):
            avg = np.nansum(mats * w, axis=0) / w.sum(axis=0)
        return pd.DataFrame(avg, index=first.index, columns=first.columns)


def universe_turnover(universe: pd.DataFrame) -> pd.Series:
    """Per date, the share of members that were not members on the previous date."""
    members = universe.groupby("date")["ticker"].apply(lambda s: set(s.astype(str)))
    out, prev = {}, None
    for date, cur in members.items():
        if prev is not None and cur:
            out[date] = len(cur - prev) / len(cur)
        prev = cur
    return pd.Series(out, dtype=float)
