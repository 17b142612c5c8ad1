"""Leakage audit (DESIGN.md §3): the research pipeline in miniature on a null market and on a market with a
planted signal. No look-ahead means the null IC is indistinguishable from zero; a working pipeline recovers
the planted signal."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.cnn import daily_ic, fingerprint, predict_ensemble, train_period
from cnn_pipelines.layout import to_images
from cnn_pipelines.market import MarketConfig, SyntheticMarket
from cnn_pipelines.panel import forward_returns_table, indicator_panel_table
from cnn_pipelines.research import fit_fold
from cnn_pipelines.settings import FeatureSettings, ResearchSettings
from cnn_pipelines.walkforward import fold_for

AUDIT_FEATURES = FeatureSettings(universe_size=30, universe_window=20, universe_min_obs=18, factor_formation=20)
AUDIT_RESEARCH = ResearchSettings(train_months=9, val_months=2, mi_sample=8000, epochs=6, batch_size=128, top_k=2)
AUDIT_PERIODS = ("2016-10-01", "2016-11-01")


def fit_period(panel: pd.DataFrame, targets: pd.DataFrame, period: str, fs: FeatureSettings, rs: ResearchSettings):
    """Everything fitted for one period: (family ranking, layout, training arrays, fingerprint, data)."""
    f = fit_fold(panel, targets, fold_for(period, rs), fs, rs, seed=1, label=f"period {period}")
    fp = fingerprint(*f.arrays[:4], config=dataclasses.asdict(rs))
    return f.ranking, f.layout, f.arrays, fp, f.data


def audit_ic(strength: float, seed: int = 2, periods=AUDIT_PERIODS, fs: FeatureSettings = AUDIT_FEATURES,
             rs: ResearchSettings = AUDIT_RESEARCH, workdir: Path | None = None) -> dict:
    """Out-of-sample daily rank IC (mean, standard error) of the miniature pipeline, and the oracle IC of the
    market's true expected returns over the same test days."""
    m = SyntheticMarket(MarketConfig(seed=seed, n_tickers=30, inception="2015-01-01", signal_strength=strength,
                                     late_listing_share=0.0, delisting_share=0.0))
    prices = m.prices("2015-01-01", "2016-12-31")
    panel = indicator_panel_table(prices, fs, "2015-09-01", "2016-12-31")
    targets = forward_returns_table(prices, fs, "2015-09-01", "2016-12-31")
    ics, oracle = [], []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for period in periods:
            _, layout, (x_tr, y_tr, x_va, y_va, d_va), fp, data = fit_period(panel, targets, period, fs, rs)
            res = train_period(x_tr, y_tr, x_va, y_va, d_va, rs, Path(tmp) / period, fp, log=lambda s: None)
            test = data.frame.loc[data.test & data.frame[f"{rs.target}_ok"].fillna(False).to_numpy(bool)]
            pred = predict_ensemble(Path(tmp) / period, res.ensemble, to_images(test, layout))
            ics.append(daily_ic(test["date"].to_numpy(), pred, test[rs.target].to_numpy()))
            er = m.expected_returns(test["date"].min(), test["date"].max())
            joined = test.merge(er.assign(date=er["date"]), on=["date", "ticker"])
            oracle.append(daily_ic(joined["date"].to_numpy(), joined["expected_return"].to_numpy(),
                                   joined[rs.target].to_numpy()))
    ic = pd.concat(ics)
    return {"signal_strength": strength, "ic": float(ic.mean()), "se": float(ic.std() / np.sqrt(len(ic))),
            "days": int(len(ic)), "oracle_ic": float(pd.concat(oracle).mean()) if strength > 0 else 0.0}


def audit_passes(null: dict, planted: dict) -> tuple[bool, str]:
    """Null IC within 2 standard errors of zero, and planted IC above zero by more than 2 standard errors."""
    null_ok = abs(null["ic"]) < 2 * null["se"]
    planted_ok = planted["ic"] > 2 * planted["se"]
    why = []
    if not null_ok:
        why.append(f"null-market IC {null['ic']:+.4f} is more than 2 s.e. ({null['se']:.4f}) from zero: look-ahead?")
    if not planted_ok:
        why.append(f"planted signal not recovered: IC {planted['ic']:+.4f} (s.e. {planted['se']:.4f})")
    return null_ok and planted_ok, "; ".join(why) or "null IC ~ 0 and planted signal recovered"
