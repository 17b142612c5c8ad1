"""Feature-panel benchmark: the reference way (per-ticker ``groupby().apply`` with ``ta``, per-ticker rolling OLS
with statsmodels) against ours (wide, vectorized), on the same synthetic panel, in the same run.

    .venv/bin/python benchmarks/features.py --tickers 100 --days 2520 --scale-tickers 500

Prints a table; the last line is a JSON object with ratio_technical, ratio_betas, ours_seconds (the full
300-column panel at --scale-tickers x --days) and peak_rss_gb (that computation's peak memory, measured in a
fresh process).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
import warnings

import numpy as np
import pandas as pd


def make_prices(tickers: int, days: int, seed: int = 1) -> pd.DataFrame:
    from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket

    cfg = MarketConfig(seed=seed, n_tickers=tickers, inception="2000-01-03")
    end = pd.bdate_range("2000-01-03", periods=int(days * 1.02) + 5)[-1]
    prices = SyntheticMarket(cfg).prices("2000-01-03", end)
    dates = np.sort(prices["date"].unique())[:days]
    return prices[prices["date"].isin(set(dates))].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- reference


def reference_technical(prices: pd.DataFrame, periods) -> pd.DataFrame:
    """The notebook way: one groupby().apply per ticker, ta indicators (plain pandas for CMO/NATR/ADOSC)."""
    import ta

    def per_ticker(df: pd.DataFrame) -> pd.DataFrame:
        if len(df) < 3 * max(periods):  # ta's ADX fails on very short histories
            return pd.DataFrame(index=df.index)
        h, l, c, v = (df[k].reset_index(drop=True) for k in ("high", "low", "close", "volume"))
        out = {}
        for n in periods:
            bb = ta.volatility.BollingerBands(c, n, 2)
            out[f"{n:02d}_RSI"] = ta.momentum.RSIIndicator(c, n).rsi()
            out[f"{n:02d}_WILLR"] = ta.momentum.WilliamsRIndicator(h, l, c, n).williams_r()
            out[f"{n:02d}_BBH"] = (bb.bollinger_hband() - c) / c
            out[f"{n:02d}_BBL"] = (c - bb.bollinger_lband()) / c
            out[f"{n:02d}_NATR"] = 100 * ta.volatility.AverageTrueRange(h, l, c, n).average_true_range() / c
            out[f"{n:02d}_PPO"] = ta.momentum.PercentagePriceOscillator(c, 26, n).ppo()
            out[f"{n:02d}_MACD"] = ta.trend.MACD(c, 26, 12, n).macd_diff() / c
            out[f"{n:02d}_MOM"] = (c - c.shift(n)) / c
            out[f"{n:02d}_WMA"] = ta.trend.WMAIndicator(c, n).wma() / c - 1
            out[f"{n:02d}_EMA"] = ta.trend.EMAIndicator(c, n).ema_indicator() / c - 1
            out[f"{n:02d}_CCI"] = ta.trend.CCIIndicator(h, l, c, n).cci()
            d = c.diff()
            su, sd = d.clip(lower=0).rolling(n).sum(), (-d).clip(lower=0).rolling(n).sum()
            out[f"{n:02d}_CMO"] = 100 * (su - sd) / (su + sd)
            out[f"{n:02d}_ROC"] = ta.momentum.ROCIndicator(c, n).roc()
            clv = (((c - l) - (h - c)) / (h - l)).where(h > l, 0.0)
            ad = (clv * v).cumsum()
            osc = ad.ewm(span=n - 3, adjust=False).mean() - ad.ewm(span=n + 4, adjust=False).mean()
            out[f"{n:02d}_ADOSC"] = osc / v.rolling(n + 4).mean()
            out[f"{n:02d}_ADX"] = ta.trend.ADXIndicator(h, l, c, n).adx()
        return pd.DataFrame({k: np.asarray(v) for k, v in out.items()}, index=df.index)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prices.groupby("ticker", group_keys=False).apply(per_ticker)


def reference_betas(returns: pd.DataFrame, factors: np.ndarray, windows) -> int:
    """Per ticker and window, statsmodels RollingOLS of returns on the factors (with intercept)."""
    import statsmodels.api as sm
    from statsmodels.regression.rolling import RollingOLS

    X = sm.add_constant(pd.DataFrame(factors, index=returns.index))
    fits = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for col in returns.columns:
            y = returns[col]
            ok = y.notna() & X.notna().all(axis=1)
            for w in windows:
                if ok.sum() <= w:
                    continue
                RollingOLS(y[ok], X[ok], window=w, min_nobs=int(np.ceil(0.8 * w))).fit(params_only=True)
                fits += 1
    return fits


# --------------------------------------------------------------------------------------------------- ours


def ours_parts(prices: pd.DataFrame, s) -> dict[str, float]:
    from cnn_pipelines.trading.features.indicators import technical_features
    from cnn_pipelines.trading.features.panel import beta_features, compute_universe
    from cnn_pipelines.trading.features.wide import to_wide

    t0 = time.perf_counter()
    bars = to_wide(prices)
    technical_features(bars.high, bars.low, bars.close, bars.volume, s.periods)
    t1 = time.perf_counter()
    u = compute_universe(bars, s)
    beta_features(bars, u, s)
    t2 = time.perf_counter()
    return {"technical": t1 - t0, "betas": t2 - t1, "bars": bars, "universe": u}


def _full_panel_worker(tickers: int, days: int, queue) -> None:
    from cnn_pipelines.trading.features.panel import indicator_panel_table
    from cnn_pipelines.trading.settings import FeatureSettings

    prices = make_prices(tickers, days)
    s = FeatureSettings(universe_size=tickers)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    panel = indicator_panel_table(prices, s, prices["date"].min(), prices["date"].max())
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "rows": len(panel), "cols": panel.shape[1] - 2,
               "peak_rss_gb": peak / 1e6, "input_rss_gb": base / 1e6})


def full_panel(tickers: int, days: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_full_panel_worker, args=(tickers, days, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=100)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--scale-tickers", type=int, default=500, help="size of the full-panel timing run")
    args = ap.parse_args()

    from cnn_pipelines.trading.features.factors import daily_returns
    from cnn_pipelines.trading.features.panel import factor_returns
    from cnn_pipelines.trading.settings import FeatureSettings

    s = FeatureSettings(universe_size=args.tickers)
    prices = make_prices(args.tickers, args.days)
    rows = len(prices)
    print(f"panel: {args.tickers} tickers x {args.days} days = {rows:,} rows", flush=True)

    ours = ours_parts(prices, s)
    bars, u = ours["bars"], ours["universe"]
    f, _ = factor_returns(bars, u, s)
    returns = pd.DataFrame(daily_returns(bars.close, bars.has_bar), index=bars.dates, columns=bars.tickers)

    t0 = time.perf_counter()
    reference_technical(prices, s.periods)
    ref_tech = time.perf_counter() - t0
    print(f"reference technical done in {ref_tech:.1f}s", flush=True)
    t0 = time.perf_counter()
    fits = reference_betas(returns, f, s.beta_windows)
    ref_betas = time.perf_counter() - t0
    print(f"reference betas ({fits} rolling fits) done in {ref_betas:.1f}s", flush=True)

    scale = full_panel(args.scale_tickers, args.days)

    table = pd.DataFrame(
        {
            "reference_s": [ref_tech, ref_betas],
            "ours_s": [ours["technical"], ours["betas"]],
            "ratio": [ref_tech / ours["technical"], ref_betas / ours["betas"]],
            "ours_rows_per_s": [rows / ours["technical"], rows / ours["betas"]],
            "target": [">= 100x", ">= 50x"],
        },
        index=["technical (15 families x 15)", "betas (5 factors x 15 windows)"],
    )
    print(table.round(2).to_markdown())
    print(f"\nfull 300-column panel, {args.scale_tickers} tickers x {args.days} days: {scale['seconds']:.1f}s "
          f"({scale['rows']:,} rows x {scale['cols']} features), peak RSS {scale['peak_rss_gb']:.2f} GB "
          f"(targets: < 30 s, < 4 GB)")
    print(json.dumps({
        "tickers": args.tickers, "days": args.days, "rows": rows,
        "reference_technical_seconds": round(ref_tech, 2), "ours_technical_seconds": round(ours["technical"], 3),
        "ratio_technical": round(ref_tech / ours["technical"], 1),
        "reference_betas_seconds": round(ref_betas, 2), "ours_betas_seconds": round(ours["betas"], 3),
        "ratio_betas": round(ref_betas / ours["betas"], 1),
        "scale_tickers": args.scale_tickers, "ours_seconds": round(scale["seconds"], 2),
        "peak_rss_gb": round(scale["peak_rss_gb"], 3),
    }))


if __name__ == "__main__":
    main()
