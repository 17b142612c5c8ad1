"""Alphalens factor tearsheet of out-of-sample predictions, against next-open-to-open prices.

Alphalens computes forward returns from the price row of the factor's date; we pass the *next* day's open
in that row, so a signal dated t is evaluated from the open of t+1 (no look-ahead), and we switch off its
full-sample z-score outlier filter (``filter_zscore=None``), which would use future data.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from cnn_pipelines.plots import png_bytes  # noqa: E402

PERIODS = (1, 5, 10, 21)


@dataclass
class Tearsheet:
    ic_summary: pd.DataFrame              # period x (ic_mean, ic_std, t_stat, p_value, days)
    mean_return_by_quantile: pd.DataFrame  # quantile x period (mean period return, in bps per day)
    spread: pd.DataFrame                   # period x (top_minus_bottom_bps, t_stat)
    turnover: pd.DataFrame                 # quantile x (mean daily turnover)
    rank_autocorrelation: float
    sample: dict
    figures: dict[str, bytes] = field(default_factory=dict)
    daily_ic: pd.DataFrame | None = None


def next_open_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Wide prices whose row t holds the open of t+1 (the first price a signal dated t can trade at)."""
    opens = prices.pivot(index="date", columns="ticker", values="open").sort_index()
    opens.index = pd.to_datetime(opens.index)
    return opens.shift(-1)


def factor_tearsheet(predictions: pd.DataFrame, prices: pd.DataFrame, periods=PERIODS, quantiles: int = 5) -> Tearsheet:
    import alphalens as al

    factor = predictions.assign(date=pd.to_datetime(predictions["date"])).set_index(["date", "ticker"])["prediction"]
    factor.index = factor.index.set_names(["date", "asset"])
    px = next_open_prices(prices)
    with contextlib.redirect_stdout(io.StringIO()):
        clean = al.utils.get_clean_factor_and_forward_returns(
            factor.astype(float), px, periods=list(periods), quantiles=quantiles, filter_zscore=None, max_loss=1.0)
    cols = [c for c in clean.columns if c.endswith("D") and c[:-1].isdigit()]
    ic = al.performance.factor_information_coefficient(clean)
    rows = {}
    for c in cols:
        x = ic[c].dropna()
        t, p = stats.ttest_1samp(x, 0.0) if len(x) > 1 else (np.nan, np.nan)
        rows[c] = {"ic_mean": x.mean(), "ic_std": x.std(), "t_stat": t, "p_value": p, "days": len(x)}
    ic_summary = pd.DataFrame(rows).T
    mean_q, _ = al.performance.mean_return_by_quantile(clean, by_date=False, demeaned=True)
    mean_q_bps = mean_q * 1e4
    by_date, _ = al.performance.mean_return_by_quantile(clean, by_date=True, demeaned=True)
    top, bottom = clean["factor_quantile"].max(), clean["factor_quantile"].min()
    spread_daily = by_date.xs(top, level="factor_quantile") - by_date.xs(bottom, level="factor_quantile")
    spread = pd.DataFrame({
        "top_minus_bottom_bps": spread_daily.mean() * 1e4,
        "t_stat": spread_daily.mean() / (spread_daily.std() / np.sqrt(spread_daily.count())),
    })
    turnover = pd.DataFrame({"mean_daily_turnover": {
        int(q): float(al.performance.quantile_turnover(clean["factor_quantile"], q, period=1).mean())
        for q in sorted(clean["factor_quantile"].unique())}})
    autocorr = float(al.performance.factor_rank_autocorrelation(clean, period=1).mean())
    dates = clean.index.get_level_values("date")
    sample = {
        "first_date": str(dates.min().date()), "last_date": str(dates.max().date()), "days": int(dates.nunique()),
        "tickers": int(clean.index.get_level_values("asset").nunique()), "observations": int(len(clean)),
        "input_observations": int(len(factor)), "dropped_fraction": float(1 - len(clean) / max(len(factor), 1)),
    }
    sheet = Tearsheet(ic_summary.astype(float), mean_q_bps, spread, turnover, autocorr, sample, daily_ic=ic)
    sheet.figures = _figures(ic, mean_q_bps, spread_daily)
    return sheet


def _figures(ic: pd.DataFrame, mean_q_bps: pd.DataFrame, spread_daily: pd.DataFrame) -> dict[str, bytes]:
    figs = {}
    first = ic.columns[0]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(ic.index, ic[first], width=1.0, color="tab:blue", alpha=0.5, label=f"daily IC ({first})")
    ax.plot(ic.index, ic[first].rolling(21, min_periods=5).mean(), color="black", lw=1.2, label="21-day mean")
    ax.axhline(0, color="gray", lw=0.6)
    ax.set_title("Information coefficient", fontsize=9)
    ax.legend(fontsize=7)
    figs["ic"] = png_bytes(fig)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    mean_q_bps.plot.bar(ax=ax)
    ax.set_ylabel("bps per period (demeaned)", fontsize=8)
    ax.set_title("Mean return by factor quantile", fontsize=9)
    figs["quantile_returns"] = png_bytes(fig)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.plot(spread_daily.index, (1 + spread_daily.iloc[:, 0].fillna(0)).cumprod() - 1, lw=1.2)
    ax.set_title(f"Cumulative top-minus-bottom quantile return ({spread_daily.columns[0]}, daily rebalanced)", fontsize=9)
    figs["spread"] = png_bytes(fig)
    return figs


def to_markdown(sheet: Tearsheet) -> dict[str, str]:
    return {
        "ic_summary": sheet.ic_summary.round(4).to_markdown(),
        "mean_return_by_quantile_bps": sheet.mean_return_by_quantile.round(2).to_markdown(),
        "top_minus_bottom": sheet.spread.round(3).to_markdown(),
        "turnover": sheet.turnover.round(3).to_markdown(),
    }


def to_html(sheet: Tearsheet, title: str) -> str:
    """A self-contained HTML report: sample, tables and embedded figures."""
    import base64

    s = sheet.sample
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>",
             f"<h1>{title}</h1>",
             f"<p>Sample: {s['first_date']} to {s['last_date']}, {s['days']} days, {s['tickers']} tickers, "
             f"{s['observations']:,} observations; alphalens dropped {s['dropped_fraction']:.2%} of "
             f"{s['input_observations']:,} (no forward prices yet, or missing opens). Forward returns run from the "
             f"next open; no z-score filter. t-statistics of overlapping horizons (5D and longer) are overstated.</p>",
             f"<p>Mean factor rank autocorrelation (1 day): {sheet.rank_autocorrelation:.3f}</p>"]
    for name, table in [("Information coefficient", sheet.ic_summary), ("Mean return by quantile (bps, demeaned)",
                        sheet.mean_return_by_quantile), ("Top minus bottom quantile", sheet.spread),
                        ("Quantile turnover", sheet.turnover)]:
        parts.append(f"<h2>{name}</h2>{table.round(4).to_html()}")
    for name, png in sheet.figures.items():
        parts.append(f"<h2>{name}</h2><img src='data:image/png;base64,{base64.b64encode(png).decode()}'/>")
    parts.append("</body></html>")
    return "\n".join(parts)

