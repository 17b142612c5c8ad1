"""Daily long-short backtest of a prediction signal: trade at the next open, equal gross books, costs.

For a signal known at the close of day t, positions are entered at the open of t+1 and held to the open of
t+2 (then rebalanced). Long the top-K predictions with weight +1/K each, short the bottom-K with -1/K each
(gross long = gross short = 1). Each day's cost is turnover x cost_bps / 1e4, with turnover the sum of
absolute weight changes against the previous day's book (the first day counts the full entry). A name
whose next-open-to-open return is missing contributes 0 (cash) that day. The benchmark is the
equal-weighted open-to-open return of every name with a prediction that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRADING_DAYS = 252


def open_to_open_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Wide (date x ticker) return from the next open to the open after: the holding period of a signal
    dated ``date``. Rows are the trading days present in ``prices``."""
    opens = prices.pivot(index="date", columns="ticker", values="open").sort_index()
    opens.index = pd.to_datetime(opens.index)
    return opens.shift(-2) / opens.shift(-1) - 1


def long_short_weights(pred: pd.DataFrame, k: int) -> pd.DataFrame:
    """Wide weights: +1/k for each day's k highest predictions, -1/k for the k lowest (ties by ticker)."""
    rank_hi = pred.rank(axis=1, ascending=False, method="first")
    rank_lo = pred.rank(axis=1, ascending=True, method="first")
    n = pred.notna().sum(axis=1)
    if (n < 2 * k).any():
        short = n[n < 2 * k]
        raise ValueError(f"need at least 2k = {2 * k} names per day; {len(short)} days have fewer, e.g. "
                         f"{short.index[0].date()} with {int(short.iloc[0])}")
    w = (rank_hi <= k).astype(float) / k - (rank_lo <= k).astype(float) / k
    return w.where(pred.notna(), 0.0)


@dataclass
class BacktestResult:
    daily: pd.DataFrame   # date, gross, cost, net, benchmark, turnover, long, short
    stats: pd.DataFrame   # metric x (strategy, benchmark)


def max_drawdown(returns: pd.Series) -> float:
    wealth = (1 + returns).cumprod()
    return float((wealth / wealth.cummax() - 1).min())


def performance(returns: pd.Series, benchmark: pd.Series | None = None) -> dict[str, float]:
    r = returns.dropna()
    out = {
        "total_return": float((1 + r).prod() - 1),
        "annual_return": float((1 + r).prod() ** (TRADING_DAYS / len(r)) - 1) if len(r) else float("nan"),
        "annual_volatility": float(r.std() * np.sqrt(TRADING_DAYS)),
        "sharpe": float(r.mean() / r.std() * np.sqrt(TRADING_DAYS)) if r.std() > 0 else float("nan"),
        "max_drawdown": max_drawdown(r),
    }
    if benchmark is not None:
        b = benchmark.reindex(r.index)
        out["beta"] = float(np.cov(r, b)[0, 1] / np.var(b, ddof=1)) if b.var() > 0 else float("nan")
    return out


def run_backtest(predictions: pd.DataFrame, prices: pd.DataFrame, k: int, cost_bps: float) -> BacktestResult:
    """Backtest ``predictions`` (date, ticker, prediction) against ``prices`` (canonical long table)."""
    pred = predictions.pivot(index="date", columns="ticker", values="prediction").sort_index()
    pred.index = pd.to_datetime(pred.index)
    fwd = open_to_open_returns(prices).reindex(index=pred.index, columns=pred.columns)
    w = long_short_weights(pred, k)
    r = fwd.fillna(0.0)
    gross = (w * r).sum(axis=1)
    turnover = w.diff().abs().sum(axis=1)
    turnover.iloc[0] = w.iloc[0].abs().sum()
    cost = turnover * cost_bps / 1e4
    bench = fwd.where(pred.notna()).mean(axis=1)
    daily = pd.DataFrame({
        "gross": gross, "cost": cost, "net": gross - cost, "benchmark": bench, "turnover": turnover,
        "long": (w.clip(lower=0) * r).sum(axis=1), "short": (w.clip(upper=0) * r).sum(axis=1),
    })
    realized = fwd.notna().any(axis=1)  # the last signal days have no next-next open yet
    daily = daily[realized]
    strat = performance(daily["net"], daily["benchmark"])
    strat["mean_daily_turnover"] = float(daily["turnover"].mean())
    strat["gross_sharpe"] = performance(daily["gross"])["sharpe"]
    bench_stats = performance(daily["benchmark"], daily["benchmark"])
    bench_stats["mean_daily_turnover"] = float("nan")
    bench_stats["gross_sharpe"] = bench_stats["sharpe"]
    stats = pd.DataFrame({"long_short": strat, "equal_weight_universe": bench_stats})
    return BacktestResult(daily.rename_axis("date").reset_index(), stats)
