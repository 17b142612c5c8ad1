"""Reference implementations for the feature tests: the `ta` library per ticker, TA-Lib's published formulas
as plain loops, and per-window least squares. Slow and obvious on purpose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import ta


def edge_case_prices(n_tickers: int = 6, n_days: int = 320, seed: int = 0) -> pd.DataFrame:
    """Random-walk bars plus edge cases: a flat stretch, missing bars, a mid-window listing, a delisting,
    bars with high == low, zero volume."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-06", periods=n_days)
    frames = []
    for i in range(n_tickers):
        r = rng.standard_t(4, n_days) * 0.015
        close = 30 * (1 + i) * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, 0.005, n_days))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.008, n_days)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.008, n_days)))
        vol = np.round(np.exp(rng.normal(12, 0.5, n_days)))
        df = pd.DataFrame({"date": dates.date, "ticker": f"T{i}", "open": open_, "high": high, "low": low,
                           "close": close, "volume": vol})
        if i == 0:  # flat stretch: no price change, high == low
            df.loc[100:140, ["open", "high", "low", "close"]] = df.loc[99, "close"]
        if i == 1:  # scattered missing bars
            df = df.drop(index=rng.choice(np.arange(30, n_days - 5), 12, replace=False))
        if i == 2:  # lists mid-window
            df = df.iloc[150:]
        if i == 3:  # delists
            df = df.iloc[: n_days - 60]
        if i == 4:
            df.loc[200:205, "volume"] = 0.0
        frames.append(df)
    return pd.concat(frames, ignore_index=True).sort_values(["date", "ticker"]).reset_index(drop=True)


def gap_filled(prices: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """One ticker's bars on the market's trading days between its first and last bar, gaps filled by the
    documented rule (previous close for open/high/low/close, zero volume)."""
    all_dates = pd.DatetimeIndex(sorted(pd.to_datetime(prices["date"]).unique()))
    df = prices[prices["ticker"] == ticker].copy()
    df["date"] = pd.to_datetime(df["date"])
    df = df.set_index("date").sort_index()
    span = all_dates[(all_dates >= df.index.min()) & (all_dates <= df.index.max())]
    df = df.reindex(span)
    gap = df["close"].isna()
    df["close"] = df["close"].ffill()
    for col in ("open", "high", "low"):
        df.loc[gap, col] = df.loc[gap, "close"]
    df.loc[gap, "volume"] = 0.0
    return df


def ta_reference(df: pd.DataFrame, n: int) -> dict[str, pd.Series]:
    """Families that follow the ta library, computed by ta on one ticker."""
    h, l, c = df["high"], df["low"], df["close"]
    bb = ta.volatility.BollingerBands(c, n, 2)
    adx = ta.trend.ADXIndicator(h.reset_index(drop=True), l.reset_index(drop=True), c.reset_index(drop=True), n).adx()
    adx = pd.Series(adx.to_numpy(), index=df.index)
    adx.iloc[: 2 * n - 1] = np.nan  # ta returns 0 during warm-up; we return NaN
    return {
        "RSI": ta.momentum.RSIIndicator(c, n).rsi(),
        "WILLR": ta.momentum.WilliamsRIndicator(h, l, c, n).williams_r(),
        "BBH": (bb.bollinger_hband() - c) / c,
        "BBL": (c - bb.bollinger_lband()) / c,
        "PPO": ta.momentum.PercentagePriceOscillator(c, 26, n).ppo(),
        "MACD": ta.trend.MACD(c, 26, 12, n).macd_diff() / c,
        "WMA": ta.trend.WMAIndicator(c, n).wma() / c - 1,
        "EMA": ta.trend.EMAIndicator(c, n).ema_indicator() / c - 1,
        "CCI": ta.trend.CCIIndicator(h, l, c, n).cci(),
        "ROC": ta.momentum.ROCIndicator(c, n).roc(),
        "ADX": adx,
        "MOM": (c - c.shift(n)) / c,
    }


def talib_formula_reference(df: pd.DataFrame, n: int) -> dict[str, np.ndarray]:
    """CMO (Chande), NATR and ADOSC as plain loops over one ticker, straight from TA-Lib's published formulas."""
    h, l, c, v = (df[k].to_numpy(dtype=float) for k in ("high", "low", "close", "volume"))
    T = len(c)
    cmo = np.full(T, np.nan)
    for t in range(n, T):
        d = np.diff(c[t - n: t + 1])
        su, sd = d[d > 0].sum(), -d[d < 0].sum()
        cmo[t] = 100 * (su - sd) / (su + sd) if su + sd != 0 else np.nan
    tr = np.full(T, np.nan)
    for t in range(1, T):
        tr[t] = max(h[t], c[t - 1]) - min(l[t], c[t - 1])
    natr = np.full(T, np.nan)
    if T > n:
        atr = tr[1: n + 1].mean()
        natr[n] = 100 * atr / c[n]
        for t in range(n + 1, T):
            atr = (atr * (n - 1) + tr[t]) / n
            natr[t] = 100 * atr / c[t]
    fast, slow = n - 3, n + 4
    kf, ks = 2 / (fast + 1), 2 / (slow + 1)
    adosc = np.full(T, np.nan)
    ad = 0.0
    ef = es = None
    for t in range(T):
        if h[t] > l[t]:
            ad += ((c[t] - l[t]) - (h[t] - c[t])) / (h[t] - l[t]) * v[t]
        ef = ad if ef is None else ef + kf * (ad - ef)
        es = ad if es is None else es + ks * (ad - es)
        if t >= slow - 1:
            mean_vol = v[t - slow + 1: t + 1].mean()
            adosc[t] = (ef - es) / mean_vol if mean_vol != 0 else np.nan
    return {"CMO": cmo, "NATR": natr, "ADOSC": adosc}


def lstsq_betas(y: np.ndarray, factors: np.ndarray, w: int, min_frac: float = 0.8) -> np.ndarray:
    """Per (row, column) OLS slopes over the trailing w rows, plain numpy.linalg.lstsq per window."""
    T, N = y.shape
    K = factors.shape[1]
    out = np.full((T, N, K), np.nan)
    for t in range(w - 1, T):
        X = np.column_stack([np.ones(w), factors[t - w + 1: t + 1]])
        for i in range(N):
            Y = y[t - w + 1: t + 1, i]
            ok = np.isfinite(Y) & np.isfinite(X).all(axis=1)
            if ok.sum() >= np.ceil(min_frac * w):
                out[t, i] = np.linalg.lstsq(X[ok], Y[ok], rcond=None)[0][1:]
    return out
