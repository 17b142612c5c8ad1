"""Every model's out-of-sample predictions scored the same way: daily rank IC, quintile spread, the long-short
book after costs, per-period IC and how alike the models' predictions are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cnn_pipelines.trading.evaluation.backtest import run_backtest, trade_returns
from cnn_pipelines.trading.evaluation.metrics import MIN_NAMES, daily_ic, mean_and_se, newey_west_se


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


def month_trade_returns(prices: pd.DataFrame, month: pd.Period,
                        sessions: pd.DatetimeIndex | None = None) -> pd.Series:
    """Per ticker, what holding a monthly signal through ``month`` earns when it is traded: bought at the month's
    first open (the first open after the signal, which is formed at the previous month's last close) and sold at
    its last open, from real bars only, as the daily labels are: a name halted at the exit is sold at its
    re-open, a name that stops trading inside the month at its last real price; a name without a bar at the
    first open is not held (absent). Empty until the month's last session is in ``prices``."""
    dates = pd.DatetimeIndex(pd.to_datetime(prices["date"])) if len(prices) else pd.DatetimeIndex([])
    known = sessions if sessions is not None else dates.unique().sort_values().union(
        pd.bdate_range(month.start_time, month.end_time))  # without a calendar: the month's weekdays
    days = known[(known >= month.start_time) & (known <= month.end_time)]
    before = known[known < month.start_time]
    if len(days) < 2 or not len(before) or not len(dates) or dates.max() < days[-1]:
        return pd.Series(dtype=float)
    signal = before[-1]
    px = prices.loc[np.asarray(dates >= signal)]
    tr = trade_returns(px, len(days) - 1, known[known >= signal])
    return tr.returns.loc[signal].dropna() if signal in tr.returns.index else pd.Series(dtype=float)


def monthly_ic(frame: pd.DataFrame, prices: pd.DataFrame, sessions: pd.DatetimeIndex | None = None) -> pd.Series:
    """Per test month of a monthly model (one prediction per name, held for the month): the rank correlation
    of the prediction with the month's tradable return (``month_trade_returns``: first open to last open, the
    signal's own close never used). Months whose last session is not yet in ``prices`` are left out."""
    out = {}
    for period, f in frame.groupby("period", sort=True):
        realized = month_trade_returns(prices, pd.Period(pd.Timestamp(period), "M"), sessions)
        if not len(realized):
            continue
        pred = f.sort_values("date").groupby(f["ticker"].astype(str))["prediction"].first()
        pair = pd.DataFrame({"p": pred, "y": realized.reindex(pred.index)}).dropna()
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


def same_rows(preds: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of ``preds`` (model, date, ticker, prediction, ...) whose (date, ticker) every model predicts,
    and each model's coverage: the share of all (date, ticker) rows any model predicts that it predicts.

    Models differ in what they can predict (ar_cnn needs 12 months of a name's history); scored on their own
    rows, a model that skips young names would be compared on an easier sample than one that does not."""
    f = preds.dropna(subset=["prediction"])
    keys = pd.MultiIndex.from_arrays([pd.Index(f["date"]), pd.Index(f["ticker"].astype(str))])
    n_models = f["model"].nunique()
    per_key = pd.Series(1, index=keys).groupby(level=[0, 1]).size()
    common = per_key.index[per_key.to_numpy() == n_models]
    coverage = f.groupby("model").size() / max(len(per_key), 1)
    return f.loc[keys.isin(common)].reset_index(drop=True), coverage


def build_leaderboard(preds: pd.DataFrame, prices: pd.DataFrame, target: str, k: int, cost_bps: float,
                      sessions: pd.DatetimeIndex | None = None, monthly_models: frozenset[str] = frozenset()
                      ) -> Leaderboard:
    """Score every model in ``preds`` (model, period, date, ticker, prediction, target) on the same rows: the
    (date, ticker) rows every model predicts (``same_rows``), with each model's coverage beside its scores;
    ``monthly_models`` (one prediction per name and month) also get their monthly IC (NaN for the others).
    ``prices`` should start before the first period so that its first month has a previous month-end close."""
    rows, period_ic, nets = [], {}, {}
    preds, coverage = same_rows(preds)
    for model, f in preds.groupby("model", sort=True):
        ic = daily_ic(f["date"].to_numpy(), f["prediction"].to_numpy(float), f[target].to_numpy(float))
        per_day = f[["date", "period"]].drop_duplicates().set_index("date")["period"]
        by_period = ic.groupby(per_day.reindex(ic.index).to_numpy())
        # Newey-West within each test month, as the study's oos_ic_se: adjacent days share prices and a model
        mean = float(ic.mean()) if len(ic) else float("nan")
        se = newey_west_se([b for _, b in by_period])
        period_ic[model] = by_period.mean()
        bt = run_backtest(f[["date", "ticker", "prediction"]], prices, k, cost_bps, sessions)
        s = bt.stats["long_short"]
        nets[model] = bt.daily.set_index("date")["net"]
        m_mean, m_se = mean_and_se(monthly_ic(f, prices, sessions)) if model in monthly_models else (np.nan, np.nan)
        rows.append({"model": model, "periods": int(f["period"].nunique()), "days": int(len(ic)),
                     "rows": int(f[target].notna().sum()), "coverage": float(coverage.get(model, np.nan)),
                     "mean_ic": mean, "ic_se": se, "ic_t": mean / se if se and np.isfinite(se) and se > 0 else np.nan,
                     "top_minus_bottom_bps": 1e4 * quintile_spread(f, target),
                     "mean_daily_turnover": s["mean_daily_turnover"], "net_sharpe": s["sharpe"],
                     "net_annual_return": s["annual_return"], "monthly_ic": m_mean, "monthly_ic_se": m_se})
    table = pd.DataFrame(rows).sort_values("mean_ic", ascending=False).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return Leaderboard(table, pd.DataFrame(period_ic).sort_index(), pd.DataFrame(nets).sort_index(),
                       prediction_correlation(preds))
