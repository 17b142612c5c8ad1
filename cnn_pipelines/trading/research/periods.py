"""Pure steps of one walk-forward period: assemble samples, select families, fit the layout, build images,
train and predict. The research assets are thin wiring around these."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import TradingCalendar, trading_calendar
from cnn_pipelines.trading.research.layout import ImageLayout, fit_layout, scaled_layout, to_images
from cnn_pipelines.trading.features.panel import feature_columns
from cnn_pipelines.trading.research.selection import rank_families, sample_rows
from cnn_pipelines.trading.settings import FeatureSettings, ResearchSettings
from cnn_pipelines.trading.research.walkforward import Fold, split_masks, test_mask
from cnn_pipelines.trading.evaluation.metrics import MIN_NAMES


@dataclass
class PeriodData:
    """Features joined with targets, and the fold's masks over its rows."""

    frame: pd.DataFrame
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def period_data(panel: pd.DataFrame, targets: pd.DataFrame, fold: Fold, rs: ResearchSettings,
                calendar: TradingCalendar) -> PeriodData:
    """Join panel and targets; training/validation rows need a usable label realized (counted in the
    calendar's sessions) before their limits."""
    frame = panel.merge(targets, on=["date", "ticker"], how="left", validate="one_to_one")
    frame = frame.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
    sessions = calendar.sessions(fold.train_start, fold.test_end + pd.Timedelta(days=60))
    train, val = split_masks(frame["date"], sessions, fold, rs.horizon)
    usable = frame[f"{rs.target}_ok"].eq(True).to_numpy()  # no target row (NaN) is unusable too
    return PeriodData(frame, train & usable, val & usable, test_mask(frame["date"], fold))


def select_families(data: PeriodData, feature_cols: list[str], rs: ResearchSettings, seed: int,
                    previous: list[str] | None = None) -> pd.DataFrame:
    """Rank the families by mean MI with the target on a sample of the training slice; mark the best n.

    Only the training slice: the validation slice that chooses epochs stays a clean holdout. Families that
    cannot be computed for this universe (see ``rank_families``) rank last, unselected. With ``previous`` (the
    last retrain's selection, fitted on earlier data) a selected family stays while it ranks within
    n + ``rs.selection_buffer``; the best others fill the remaining places. A family at the margin no longer
    flips in and out from month to month, which would change the image and force a fresh start."""
    fit = data.frame.loc[data.train]
    idx = sample_rows(len(fit), rs.mi_sample, seed)
    sample = fit.iloc[idx]
    ranking = rank_families(sample[feature_cols], sample[rs.target].to_numpy(float), rs.mi_bins)
    ranking["selected"] = ranking["available"] & (ranking["rank"] <= rs.n_families)
    if previous and rs.selection_buffer > 0:
        ok = ranking["available"]
        stay = ok & ranking["family"].isin(previous) & (ranking["rank"] <= rs.n_families + rs.selection_buffer)
        fill = ranking.loc[ok & ~stay].sort_values("rank").head(max(0, rs.n_families - int(stay.sum())))
        ranking["selected"] = stay | ranking.index.isin(fill.index)
    ranking.attrs["sample_rows"] = len(sample)
    return ranking


def fit_image_layout(data: PeriodData, families: list[str], fs: FeatureSettings, rs: ResearchSettings,
                     seed: int, previous: ImageLayout | None = None) -> tuple[ImageLayout, np.ndarray | None, np.ndarray | None]:
    """Clustering and scaler, fitted on the training slice only (the validation slice is a holdout).

    With ``previous`` (the last retrain's layout) over the same families, its grid order is kept and only the
    scaler is refitted (no linkages are returned): the same image for the network, so training can go on
    from the previous model."""
    train = data.frame.loc[data.train]
    if previous is not None and sorted(previous.families) == sorted(families):
        return scaled_layout(train, previous.families, previous.period_index, fs, rs.scale_quantile), None, None
    return fit_layout(train, families, fs, rs.scale_quantile, seed=seed)


def cross_sectional_score(dates: pd.Series, y: pd.Series, clip: float = 3.0) -> np.ndarray:
    """Per date, (y - mean) / std across that day's names, clipped to +-clip.

    The network learns the cross-section (what IC measures) instead of the day's market move, which
    dominates raw returns; only same-day labels are used, so nothing crosses the cutoff.
    """
    g = y.groupby(dates.to_numpy())
    z = (y - g.transform("mean")) / g.transform("std").replace(0, np.nan)
    return np.clip(z.fillna(0.0).to_numpy(np.float64), -clip, clip)


def training_arrays(data: PeriodData, layout: ImageLayout, rs: ResearchSettings):
    """Images and labels for training and validation, built on the fly with the one image builder.

    Training labels are cross-sectional z-scores of the target; validation keeps raw targets (IC is
    rank-based, so the choice of epochs is unaffected by the transform)."""
    f = data.frame
    tr, va = f.loc[data.train], f.loc[data.val]
    y_tr = cross_sectional_score(tr["date"], tr[rs.target])
    return (to_images(tr, layout), y_tr.astype(np.float32),
            to_images(va, layout), va[rs.target].to_numpy(np.float64), va["date"].to_numpy())


def require_rows(data: PeriodData, label: str, fold: Fold, min_train: int = 100, min_val: int = 20) -> None:
    """Fail clearly when the window holds too little labelled history to fit anything, or too few names a day
    to choose an epoch by daily rank IC (a universe of one or two tickers trained on garbage before)."""
    if data.train.sum() < min_train or data.val.sum() < min_val:
        raise ValueError(f"{label}: only {int(data.train.sum())} training and {int(data.val.sum())} validation rows "
                         f"before {fold.cutoff}; materialize the feature tables from {fold.train_start} on")
    val = data.frame.loc[data.val]
    names = int(val.groupby("date")["ticker"].nunique().max())
    if names < MIN_NAMES:
        raise ValueError(f"{label}: at most {names} name(s) a day in the validation window (the universe on "
                         f"{val['date'].min()} .. {val['date'].max()}): the epoch is chosen by the daily rank IC "
                         f"across names, which needs {MIN_NAMES} or more; a cross-sectional model cannot be studied "
                         f"on fewer tickers")


@dataclass
class FittedFold:
    """Everything fitted on one fold's training window, ready to train on."""

    data: PeriodData
    ranking: pd.DataFrame
    layout: ImageLayout
    arrays: tuple  # x_train, y_train, x_val, y_val, val_dates


def fit_fold(panel: pd.DataFrame, targets: pd.DataFrame, fold: Fold, fs: FeatureSettings, rs: ResearchSettings,
             seed: int, label: str, previous: ImageLayout | None = None) -> FittedFold:
    """Selection, layout/scaler and training arrays for one fold: the research and production path alike.
    ``previous``: the last retrain's layout, kept where the selection allows (see ``select_families``)."""
    data = period_data(panel, targets, fold, rs, trading_calendar(fs.calendar))
    require_rows(data, label, fold)
    ranking = select_families(data, feature_columns(fs), rs, seed, previous.families if previous else None)
    families = ranking.loc[ranking["selected"], "family"].tolist()
    layout, _, _ = fit_image_layout(data, families, fs, rs, seed, previous)
    return FittedFold(data, ranking, layout, training_arrays(data, layout, rs))


def image_table(data: PeriodData, layout: ImageLayout, period: str) -> pd.DataFrame:
    """The test period's images (225 float32 pixel columns ``px_RR_CC``) keyed by date and ticker, with targets."""
    test = data.frame.loc[data.test]
    imgs = to_images(test, layout)
    n, r, c, _ = imgs.shape
    pixels = pd.DataFrame(imgs.reshape(n, r * c), columns=[f"px_{i:02d}_{j:02d}" for i in range(r) for j in range(c)],
                          index=test.index)
    keep = ["date", "ticker", *[col for col in test.columns if col.startswith("fwd_")]]
    out = pd.concat([test[keep], pixels], axis=1).reset_index(drop=True)
    out.insert(2, "period", pd.Timestamp(period).date())
    return out


def images_from_table(table: pd.DataFrame) -> np.ndarray:
    px = [c for c in table.columns if c.startswith("px_")]
    side = int(round(len(px) ** 0.5))
    return table[px].to_numpy(np.float32).reshape(len(table), side, side, 1)


def mean_images_by_decile(table: pd.DataFrame, target: str) -> dict[int, np.ndarray]:
    imgs = images_from_table(table)
    dec = table[f"{target}_decile"].to_numpy()
    return {int(d): imgs[dec == d, :, :, 0].mean(axis=0) for d in sorted(set(dec)) if d > 0}
