"""Every model's out-of-sample predictions scored the same way: daily rank IC, quintile spread, the long-short
book after costs, per-period IC and how alike the models' predictions are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cnn_pipelines.trading.evaluation.backtest import run_backtest
from cnn_pipelines.trading.evaluation.metrics import MIN_NAMES, daily_ic, mean_and_se
from cnn_pipelines.trading.models.autoregressive import monthly_returns


@dataclass
class Leaderboard:
    table: pd.DataFrame            # one row per model, best mean IC first
    period_ic: pd.DataFrame        # period x model: mean daily IC
    net_returns: pd.DataFrame      # date x model: daily net return of the long-short book
    prediction_corr: pd.DataFrame  # model x model: mean daily rank correlation of predictions


def quintile_spread(frame: pd.DataFrame, target: str, quantiles: int = 5) -> float:
    """Mean daily return of the top prediction quintile minus the bottom one (in the target's units)."""
    f = frame.dropna(subset=["prediction", target])
    f = f[f.groupby("date")["prediction"].transform("size") >= quantiles]
    if f.empty:
        return float("nan")
    rank = f.groupby("date")["prediction"].rank(pct=True)
    q = np.ceil(rank * quantiles).clip(1, quantiles)
    by = f.assign(q=q).groupby(["date", "q"])[target].mean().unstack()
    return float((by[quantiles] - by[1]).mean())


def monthly_ic(frame: pd.DataFrame, prices: pd.DataFrame, sessions: pd.DatetimeIndex | None = None) -> pd.Series:
    """Per test month of a monthly model (one prediction per name, held for the month): the rank correlation
    of the prediction with the month's close-to-close return (previous month-end close to this one). Months
    whose last session is not yet in ``prices`` are left out."""
    last_bar = pd.Timestamp(max(prices["date"])) if len(prices) else pd.NaT
    out = {}
    for period, f in frame.groupby("period", sort=True):
        month = pd.Period(pd.Timestamp(period), "M")
        days = (sessions[(sessions >= month.start_time) & (sessions <= month.end_time)] if sessions is not None
                else pd.bdate_range(month.start_time, month.end_time))
        if not len(days) or pd.isna(last_bar) or last_bar < days[-1]:
            continue
        realized = monthly_returns(prices, month)
        if month not in realized.index:
            continue
        pred = f.sort_values("date").groupby(f["ticker"].astype(str))["prediction"].first()
        pair = pd.DataFrame({"p": pred, "y": realized.loc[month].reindex(pred.index)}).dropna()
        if len(pair) >= MIN_NAMES and pair["p"].nunique() > 1:
            out[period] = float(pair["p"].rank().corr(pair["y"].rank()))
    return pd.Series(out, dtype=float)


def prediction_correlation(preds: pd.DataFrame) -> pd.DataFrame:
    """Mean over days of the Spearman correlation between two models' predictions for the same names."""
    wide = preds.pivot_table(index=["date", "ticker"], columns="model", values="prediction")
    ranks = wide.groupby(level="date").rank()
    models = list(wide.columns)
    out = pd.DataFrame(np.eye(len(models)), index=models, columns=models)
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            pair = ranks[[a, b]].dropna()
            daily = pair.groupby(level="date").apply(lambda g: g[a].corr(g[b]) if len(g) >= 3 else np.nan)
            out.loc[a, b] = out.loc[b, a] = float(daily.mean())
    return out


def build_leaderboard(preds: pd.DataFrame, prices: pd.DataFrame, target: str, k: int, cost_bps: float,
                      sessions: pd.DatetimeIndex | None = None, monthly_models: frozenset[str] = frozenset()
                      ) -> Leaderboard:
    """Score every model in ``preds`` (model, period, date, ticker, prediction, target) on the same rows;
    ``monthly_models`` (one prediction per name and month) also get their monthly IC (NaN for the others).
    ``prices`` should start before the first period so that its first month has a previous month-end close."""
    rows, period_ic, nets = [], {}, {}
    for model, f in preds.groupby("model", sort=True):
        ic = daily_ic(f["date"].to_numpy(), f["prediction"].to_numpy(float), f[target].to_numpy(float))
        mean, se = mean_and_se(ic)
        per_day = f[["date", "period"]].drop_duplicates().set_index("date")["period"]
        period_ic[model] = ic.groupby(per_day.reindex(ic.index).to_numpy()).mean()
        bt = run_backtest(f[["date", "ticker", "prediction"]], prices, k, cost_bps, sessions)
        s = bt.stats["long_short"]
        nets[model] = bt.daily.set_index("date")["net"]
        m_mean, m_se = mean_and_se(monthly_ic(f, prices, sessions)) if model in monthly_models else (np.nan, np.nan)
        rows.append({"model": model, "periods": int(f["period"].nunique()), "days": int(len(ic)),
                     "mean_ic": mean, "ic_se": se, "ic_t": mean / se if se and np.isfinite(se) and se > 0 else np.nan,
                     "top_minus_bottom_bps": 1e4 * quintile_spread(f, target),
                     "mean_daily_turnover": s["mean_daily_turnover"], "net_sharpe": s["sharpe"],
                     "net_annual_return": s["annual_return"], "monthly_ic": m_mean, "monthly_ic_se": m_se})
    table = pd.DataFrame(rows).sort_values("mean_ic", ascending=False).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return Leaderboard(table, pd.DataFrame(period_ic).sort_index(), pd.DataFrame(nets).sort_index(),
                       prediction_correlation(preds))
