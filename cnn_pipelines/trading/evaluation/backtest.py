"""Daily long-short backtest of a prediction signal: trade at the next open, equal gross books, costs.

For a signal known at the close of day t, positions are entered at the open of t+1 and held to the open of
t+2 (then rebalanced). Long the top-K predictions with weight +1/K each, short the bottom-K with -1/K each
(gross long = gross short = 1; K shrinks to half the names on days with fewer than 2K). Each day's cost is
turnover x cost_bps / 1e4, with turnover the sum of absolute weight changes against the previous day's
book (the first day counts the full entry). The benchmark is the equal-weighted open-to-open return of
every name with a prediction that day.

Trade returns (``trade_returns``, shared with the tearsheet) come from real bars only, never forward-filled:
a name without a bar at the entry open cannot be entered (it is reported, and sits in cash); a name without
a bar at the exit open exits at the open of its next real bar when it trades again (a halt: the position is
stuck until the re-open), and at its last real price, the close of its last bar before the exit, only when
it never trades again in the data (a delisting); both are reported. Sessions come from the trading calendar, so a missing bar is
never mistaken for the next day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRADING_DAYS = 252


@dataclass
class TradeReturns:
    """Wide (signal date x ticker) returns of holding from the next open for ``period`` sessions."""

    returns: pd.DataFrame      # NaN: not enterable (no bar at the next open) or not yet realized
    last_price_exit: pd.DataFrame  # True where the exit open had no bar, the name never traded again: last price
    no_entry: pd.DataFrame     # True where the next session has no bar for the name
    reopen_exit: pd.DataFrame  # True where the exit open had no bar and the next real open (a re-open) was used


def trade_returns(prices: pd.DataFrame, period: int = 1, sessions: pd.DatetimeIndex | None = None) -> TradeReturns:
    """Return of a position taken at the open after each date and closed at the open ``period`` sessions
    later, from real bars only (see the module docstring). ``sessions``: the exchange's sessions over the
    price range (default: the dates present in ``prices``)."""
    opens = prices.pivot(index="date", columns="ticker", values="open")
    opens.index = pd.to_datetime(opens.index)
    index = opens.index.union(sessions) if sessions is not None else opens.index
    index = index[(index >= opens.index.min()) & (index <= opens.index.max())]
    o = opens.reindex(index).sort_index().to_numpy(float)
    if "close" in prices.columns:
        closes = prices.pivot(index="date", columns="ticker", values="close")
        closes.index = pd.to_datetime(closes.index)
        c = closes.reindex(index=index, columns=opens.columns).to_numpy(float)
    else:
        c = np.full_like(o, np.nan)
    T = len(index)
    has = np.isfinite(o)
    # last real close at or before each row (its row index), for exits over a missing bar
    last_row = np.where(has, np.arange(T)[:, None], -1)
    np.maximum.accumulate(last_row, axis=0, out=last_row)
    # next real open at or after each row (T: none), for exits over a halt
    next_row = np.where(has, np.arange(T)[:, None], T)
    next_row = np.minimum.accumulate(next_row[::-1], axis=0)[::-1]
    ret = np.full_like(o, np.nan)
    forced = np.zeros_like(has)
    reopened = np.zeros_like(has)
    no_entry = np.zeros_like(has)
    n = T - 1 - period  # rows whose exit session lies inside the data (later ones are not yet realized)
    if n > 0:
        entry = o[1:1 + n]
        exit_open = o[1 + period:1 + period + n]
        k = last_row[period:period + n]  # last real bar before the exit session
        cols = np.arange(o.shape[1])[None, :]
        fallback = np.where(k >= np.arange(1, n + 1)[:, None], c[np.maximum(k, 0), cols], np.nan)
        j = next_row[1 + period:1 + period + n]  # first real bar at or after the exit session
        reopen = np.where(j < T, o[np.minimum(j, T - 1), cols], np.nan)
        missing_exit = ~np.isfinite(exit_open) & np.isfinite(entry)
        use_reopen = missing_exit & np.isfinite(reopen)
        use_last = missing_exit & ~use_reopen
        exit_px = np.where(use_reopen, reopen, np.where(use_last, fallback, exit_open))
        with np.errstate(invalid="ignore", divide="ignore"):
            ret[:n] = exit_px / entry - 1
        forced[:n] = use_last & np.isfinite(exit_px)
        reopened[:n] = use_reopen
        no_entry[:n] = ~np.isfinite(entry)
    frame = lambda a: pd.DataFrame(a, index=index, columns=opens.columns)  # noqa: E731
    return TradeReturns(frame(ret), frame(forced), frame(no_entry), frame(reopened))


def long_short_weights(pred: pd.DataFrame, k: int) -> pd.DataFrame:
    """Wide weights: +1/k for each day's k highest predictions, -1/k for the k lowest (ties by ticker).

    On a day with fewer than 2k names, k shrinks to half of them (a small universe still trades both
    sides equally); a day with fewer than 2 names holds nothing."""
    rank_hi = pred.rank(axis=1, ascending=False, method="first")
    rank_lo = pred.rank(axis=1, ascending=True, method="first")
    n = pred.notna().sum(axis=1)
    k_day = np.minimum(k, n // 2).astype(float)
    per_name = (1.0 / k_day.replace(0, np.nan)).to_numpy()[:, None]
    w = (rank_hi.le(k_day, axis=0).astype(float) - rank_lo.le(k_day, axis=0).astype(float)) * per_name
    return w.where(pred.notna(), 0.0).fillna(0.0)


@dataclass
class BacktestResult:
    daily: pd.DataFrame   # date, gross, cost, net, benchmark, turnover, long, short
    stats: pd.DataFrame   # metric x (strategy, benchmark)
    events: pd.DataFrame  # date, ticker, event: last-price exits and names that could not be entered


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


def run_backtest(predictions: pd.DataFrame, prices: pd.DataFrame, k: int, cost_bps: float,
                 sessions: pd.DatetimeIndex | None = None) -> BacktestResult:
    """Backtest ``predictions`` (date, ticker, prediction) against ``prices`` (canonical long table).

    ``result.events`` lists each held name that exited at its last real price (delisted) or at its re-open
    (halted), or could not be entered."""
    pred = predictions.pivot(index="date", columns="ticker", values="prediction").sort_index()
    pred.index = pd.to_datetime(pred.index)
    tr = trade_returns(prices, 1, sessions)
    fwd = tr.returns.reindex(index=pred.index, columns=pred.columns)
    w = long_short_weights(pred, k)
    held = w.ne(0)
    events = pd.concat([
        _events(held & tr.last_price_exit.reindex_like(held).fillna(False).astype(bool), "exited at last real price"),
        _events(held & tr.reopen_exit.reindex_like(held).fillna(False).astype(bool), "halted: exited at the re-open"),
        _events(held & tr.no_entry.reindex_like(held).fillna(False).astype(bool), "no bar at the entry open: held cash"),
    ], ignore_index=True)
    r = fwd.fillna(0.0)  # only the not-enterable (reported above) are NaN among realized days
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
    events = events[events["date"].isin(daily.index)].reset_index(drop=True)
    return BacktestResult(daily.rename_axis("date").reset_index(), stats, events)


def _events(mask: pd.DataFrame, what: str) -> pd.DataFrame:
    rows, cols = np.nonzero(mask.to_numpy())
    return pd.DataFrame({"date": mask.index[rows], "ticker": mask.columns[cols].astype(str), "event": what})
