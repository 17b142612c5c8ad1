"""Evaluation metrics shared by training (epoch choice), research, the tearsheet and the audit."""

from __future__ import annotations

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
