"""Evaluation metrics shared by training (epoch choice), research, the tearsheet and the audit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MIN_NAMES = 3  # a rank correlation over fewer names carries no information


def daily_ic(dates: np.ndarray, pred: np.ndarray, target: np.ndarray, min_names: int = MIN_NAMES) -> pd.Series:
    """Spearman rank correlation between prediction and target per date, over the names with both (dates
    with at least ``min_names``; a day of constant predictions has no IC and is dropped)."""
    df = pd.DataFrame({"date": dates, "p": pred, "y": target}).dropna()
    df = df[df.groupby("date")["y"].transform("size") >= min_names]
    if df.empty:
        return pd.Series(dtype=float)
    ranks = df.groupby("date")[["p", "y"]].rank()
    ranks["date"] = df["date"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return ranks.groupby("date").apply(lambda g: g["p"].corr(g["y"]), include_groups=False).dropna()


def mean_and_se(ic: pd.Series) -> tuple[float, float]:
    """Mean of a daily IC series and its standard error (NaN where undefined)."""
    mean = float(ic.mean()) if len(ic) else float("nan")
    se = float(ic.std() / np.sqrt(len(ic))) if len(ic) > 1 else float("nan")
    return mean, se


def newey_west_se(blocks: Sequence[pd.Series], lags: int | None = None) -> float:
    """Standard error of the pooled mean of daily IC series that may be autocorrelated within each block
    (Newey-West, Bartlett weights; no covariance across blocks, e.g. separate markets). Adjacent days' labels
    share prices (an open-to-open label's exit is the next label's entry) and a month's model and slow features
    persist, so the i.i.d. ``mean_and_se`` understates the spread. ``lags`` defaults to 4 (N/100)^(2/9)."""
    xs = [np.asarray(b, dtype=float) for b in blocks]
    xs = [x[np.isfinite(x)] for x in xs]
    n = sum(len(x) for x in xs)
    if n < 2:
        return float("nan")
    mean = sum(x.sum() for x in xs) / n
    xs = [x - mean for x in xs]
    lags = int(4 * (n / 100) ** (2 / 9)) if lags is None else lags
    var = sum(float(x @ x) for x in xs)
    for lag in range(1, lags + 1):
        weight = 1 - lag / (lags + 1)
        var += 2 * weight * sum(float(x[lag:] @ x[:-lag]) for x in xs if len(x) > lag)
    return float(np.sqrt(max(var, 0.0) * n / (n - 1)) / n)


def oos_ic(predictions: pd.DataFrame, label: str) -> tuple[float, float, int]:
    """Mean daily rank IC of out-of-sample predictions against every realized label (mean, s.e., days).

    Every realized label is scored: the jump rule (``<label>_ok``) filters training rows only, since
    dropping evaluation rows on the label's own size would drop exactly the names that later jump."""
    ic = daily_ic(predictions["date"].to_numpy(), predictions["prediction"].to_numpy(),
                  predictions[label].to_numpy(float))
    mean, se = mean_and_se(ic)
    return mean, se, int(len(ic))


def seed_ic_spread(predictions: pd.DataFrame, label: str) -> dict:
    """The OOS IC of each member of a multi-seed ensemble (columns ``prediction_seed<k>``), their mean and
    their spread (sample standard deviation): the part of a model's IC that is training noise, to read beside
    the IC's standard error over days."""
    cols = sorted((c for c in predictions.columns if c.startswith("prediction_seed")), key=lambda c: int(c[15:]))
    ics = np.array([oos_ic(predictions.dropna(subset=[c]).assign(prediction=lambda f, c=c: f[c]), label)[0]
                    for c in cols], dtype=float)
    finite = ics[np.isfinite(ics)]
    return {"seeds": len(cols), "ic_by_seed": [round(float(v), 4) for v in ics],
            "ic_seed_mean": round(float(finite.mean()), 4) if len(finite) else float("nan"),
            "ic_seed_spread": round(float(finite.std(ddof=1)), 4) if len(finite) > 1 else float("nan")}
