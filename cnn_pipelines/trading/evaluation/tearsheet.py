"""Alphalens factor tearsheet of out-of-sample predictions, against next-open-to-open returns.

We compute the forward returns ourselves (``backtest.trade_returns``: from the open after the signal to the
open P sessions later, real bars only, a halted name exiting at its re-open, a delisted one at its last real
price) and hand them to
alphalens (``get_clean_factor``). Letting alphalens compute them from prices would forward-fill over
missing bars: a name with no bar at t+1 would be credited the move from the open of t, which the signal
dated t already knew. Its full-sample z-score outlier filter, which would use future data, is not used.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
from matplotlib.ticker import PercentFormatter  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from cnn_pipelines.trading.evaluation.backtest import trade_returns  # noqa: E402
from cnn_pipelines.trading.evaluation.metrics import newey_west_se, oos_ic  # noqa: E402
from cnn_pipelines.plots import date_axis, png_bytes  # noqa: E402

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
    label_ic: pd.DataFrame | None = None   # label x (ic_mean, ic_se, days): IC against each realized label
    exits: pd.DataFrame | None = None      # date, ticker, period: positions closed at the last real price


def forward_returns_for_alphalens(factor: pd.Series, prices: pd.DataFrame, periods,
                                  sessions: pd.DatetimeIndex | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alphalens' forward-returns frame ((date, asset) x '1D', '5D', ...) from the next open, real bars only,
    and the (date, asset, period) rows that exited at the last real price."""
    cols, exits = {}, []
    for p in periods:
        tr = trade_returns(prices, p, sessions)
        cols[f"{p}D"] = tr.returns.stack(future_stack=True).rename_axis(["date", "asset"]).reindex(factor.index)
        forced = tr.last_price_exit.stack(future_stack=True).rename_axis(["date", "asset"]).reindex(factor.index)
        hit = forced[forced.fillna(False).astype(bool)]
        exits.append(pd.DataFrame({"date": hit.index.get_level_values(0), "ticker": hit.index.get_level_values(1),
                                   "period": f"{p}D"}))
    return pd.DataFrame(cols), pd.concat(exits, ignore_index=True)


def realized_horizons(fwd: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The forward-returns frame cut to the horizons alphalens can use, and the longer ones it cannot. Alphalens
    keeps a prediction only where every horizon is realized, so a study whose test days all lie within 21
    sessions of the newest prices had no 21D return anywhere and no tearsheet at all. The longest horizons are
    dropped until some prediction has all the others; with no realized 1-day return yet, it says so."""
    for k in range(fwd.shape[1], 0, -1):
        if fwd.iloc[:, :k].notna().all(axis=1).any():
            return fwd.iloc[:, :k], [str(c) for c in fwd.columns[k:]]
    dates = fwd.index.get_level_values(0)
    raise ValueError(f"no prediction ({dates.min().date()} .. {dates.max().date()}) has a realized {fwd.columns[0]} "
                     f"trade return yet: the tearsheet needs the prices of the sessions after the predictions")


def overlap_t(x: pd.Series, horizon: int) -> tuple[float, float]:
    """t-statistic and two-sided p-value of the mean of a daily series of ``horizon``-day statistics. Windows
    of consecutive days share horizon - 1 days, so the series is autocorrelated by construction: the plain
    t-test counts 46 overlapping 21-day windows as 46 independent ones. The s.e. is Newey-West with at least
    horizon - 1 lags (and the usual 4 (N/100)^(2/9))."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2:
        return float("nan"), float("nan")
    lags = min(n - 1, max(horizon - 1, int(4 * (n / 100) ** (2 / 9))))
    se, mean = newey_west_se([pd.Series(x)], lags=lags), float(x.mean())
    if not se > 0:  # every day the same value: no spread to test against
        return (float("nan"), float("nan")) if mean == 0 else (float(np.sign(mean) * np.inf), 0.0)
    t = mean / se
    return float(t), float(2 * stats.t.sf(abs(t), df=n - 1))


def factor_tearsheet(predictions: pd.DataFrame, prices: pd.DataFrame, periods=PERIODS, quantiles: int = 5,
                     sessions: pd.DatetimeIndex | None = None, name: str = "") -> Tearsheet:
    """Alphalens statistics of ``predictions`` (date, ticker, prediction and any realized label columns
    ``fwd_*``, each of which gets its own daily rank IC in ``label_ic``). With fewer names per day than
    ``quantiles``, the quantile count shrinks to the smallest daily cross-section (at least 2). ``name``
    (a model) heads the figures' titles."""
    import alphalens as al

    factor = predictions.assign(date=pd.to_datetime(predictions["date"])).set_index(["date", "ticker"])["prediction"]
    factor.index = factor.index.set_names(["date", "asset"])
    factor = factor.astype(float)
    fwd, exits = forward_returns_for_alphalens(factor, prices, periods, sessions)
    fwd, pending = realized_horizons(fwd)
    names = int(factor.groupby(level="date").count().min())
    quantiles = max(2, min(quantiles, names))
    with contextlib.redirect_stdout(io.StringIO()):
        clean = al.utils.get_clean_factor(factor, fwd, quantiles=quantiles, max_loss=1.0)
    cols = [c for c in clean.columns if c.endswith("D") and c[:-1].isdigit()]
    ic = al.performance.factor_information_coefficient(clean)
    rows = {}
    for c in cols:
        x = ic[c].dropna()
        t, p = overlap_t(x, int(c[:-1]))
        rows[c] = {"ic_mean": x.mean(), "ic_std": x.std(), "t_stat": t, "p_value": p, "days": len(x)}
    ic_summary = pd.DataFrame(rows).T
    mean_q, _ = al.performance.mean_return_by_quantile(clean, by_date=False, demeaned=True)
    mean_q_bps = mean_q * 1e4
    by_date, _ = al.performance.mean_return_by_quantile(clean, by_date=True, demeaned=True)
    top, bottom = clean["factor_quantile"].max(), clean["factor_quantile"].min()
    spread_daily = by_date.xs(top, level="factor_quantile") - by_date.xs(bottom, level="factor_quantile")
    spread = pd.DataFrame({
        "top_minus_bottom_bps": spread_daily.mean() * 1e4,
        "t_stat": [overlap_t(spread_daily[c].dropna(), int(c[:-1]))[0] for c in spread_daily.columns],
    }, index=spread_daily.columns)
    turnover = pd.DataFrame({"mean_daily_turnover": {
        int(q): float(al.performance.quantile_turnover(clean["factor_quantile"], q, period=1).mean())
        for q in sorted(clean["factor_quantile"].unique())}})
    autocorr = float(al.performance.factor_rank_autocorrelation(clean, period=1).mean())
    dates = clean.index.get_level_values("date")
    sample = {
        "first_date": str(dates.min().date()), "last_date": str(dates.max().date()), "days": int(dates.nunique()),
        "tickers": int(clean.index.get_level_values("asset").nunique()), "observations": int(len(clean)),
        "input_observations": int(len(factor)), "dropped_pct": round(100 * (1 - len(clean) / max(len(factor), 1)), 1),
        "quantiles": quantiles,
        "last_price_exits": int(len(exits)),
    }
    if pending:
        sample["horizons_not_yet_realized"] = ", ".join(pending)
    label_ic = {}
    for col in [c for c in predictions.columns if c.startswith("fwd_") and not c.endswith(("_ok", "_decile"))]:
        mean, se, days = oos_ic(predictions, col)
        label_ic[col] = {"ic_mean": mean, "ic_se": se, "days": days}
    sheet = Tearsheet(ic_summary.astype(float), mean_q_bps, spread, turnover, autocorr, sample, daily_ic=ic,
                      label_ic=pd.DataFrame(label_ic).T, exits=exits)
    sheet.figures = _figures(ic, mean_q_bps, spread_daily, f"{name}: " if name else "")
    return sheet


def _figures(ic: pd.DataFrame, mean_q_bps: pd.DataFrame, spread_daily: pd.DataFrame, who: str = "") -> dict[str, bytes]:
    figs = {}
    first = ic.columns[0]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(ic.index, ic[first], width=1.0, color="tab:blue", alpha=0.5, label=f"daily IC ({first})")
    ax.plot(ic.index, ic[first].rolling(21, min_periods=5).mean(), color="black", lw=1.2, label="21-day mean")
    ax.axhline(0, color="gray", lw=0.6)
    ax.set_title(f"{who}Information coefficient (daily Spearman rank correlation, prediction vs forward return)")
    ax.set_ylabel("rank IC")
    ax.legend()
    date_axis(ax)
    figs["ic"] = png_bytes(fig)
    fig, ax = plt.subplots(figsize=(8, 3))
    mean_q_bps.plot.bar(ax=ax, rot=0)
    ax.set_xlabel("factor quantile (1 = lowest prediction)")
    ax.set_ylabel("bps per period (demeaned)")
    ax.set_title(f"{who}Mean return by factor quantile")
    figs["quantile_returns"] = png_bytes(fig)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(spread_daily.index, (1 + spread_daily.iloc[:, 0].fillna(0)).cumprod() - 1, lw=1.2)
    date_axis(ax)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("cumulative return")
    ax.set_title(f"{who}Cumulative top-minus-bottom quantile return ({spread_daily.columns[0]}, daily rebalanced)")
    figs["spread"] = png_bytes(fig)
    return figs


def p_value(p: float) -> str:
    """A p-value as a reader quotes it: 3 decimals, "< 0.001" below that, "n/a" when not defined."""
    return "n/a" if p != p else "< 0.001" if p < 0.001 else f"{p:.3f}"


def to_tables(sheet: Tearsheet) -> dict[str, pd.DataFrame]:
    """The tearsheet's tables as its asset page shows them: ICs 4 decimals, t 2 and p 3 (Newey-West, "t (NW)"),
    bps 1 (per horizon: the 5D spread is over five days), turnover in %;
    a cell the sample cannot fill (too few dates, an empty quantile) is NaN, which the page shows as n/a."""
    ic = sheet.ic_summary.astype(float)
    tables = {
        "ic_summary": pd.DataFrame({"horizon": ic.index.astype(str), "IC": ic["ic_mean"].round(4).to_numpy(),
                                    "IC sd": ic["ic_std"].round(4).to_numpy(), "t (NW)": ic["t_stat"].round(2).to_numpy(),
                                    "p": [p_value(p) for p in ic["p_value"]], "days": ic["days"].astype(int).to_numpy()}),
        "mean_return_by_quantile_bps": sheet.mean_return_by_quantile.astype(float).round(1).rename(
            columns=str).rename_axis("quantile").reset_index(),
        "top_minus_bottom": pd.DataFrame({"horizon": sheet.spread.index.astype(str),
                                          "bps": sheet.spread["top_minus_bottom_bps"].astype(float).round(1).to_numpy(),
                                          "t (NW)": sheet.spread["t_stat"].astype(float).round(2).to_numpy()}),
        "turnover": pd.DataFrame({"quantile": sheet.turnover.index.astype(int),
                                  "turnover %/day": (100 * sheet.turnover["mean_daily_turnover"].astype(float)).round(1)
                                  .to_numpy()}),
    }
    if sheet.label_ic is not None and len(sheet.label_ic):
        lab = sheet.label_ic.astype(float)
        tables["ic_by_label"] = pd.DataFrame({"label": lab.index.astype(str), "IC": lab["ic_mean"].round(4).to_numpy(),
                                              "s.e.": lab["ic_se"].round(4).to_numpy(),
                                              "days": lab["days"].fillna(0).astype(int).to_numpy()})
    return tables


def to_html(sheet: Tearsheet, title: str) -> str:
    """A self-contained HTML report: sample, tables and embedded figures."""
    import base64

    s = sheet.sample
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>",
             f"<h1>{title}</h1>",
             f"<p>Sample: {s['first_date']} to {s['last_date']}, {s['days']} days, {s['tickers']} tickers, "
             f"{s['observations']:,} observations; alphalens dropped {s['dropped_pct']:.1f}% of "
             f"{s['input_observations']:,} (not yet realized, or no bar at the next open). Forward returns run from "
             f"the next open to the open P sessions later, from real bars only (never forward-filled); "
             f"{s['last_price_exits']:,} positions whose exit open had no bar and that never traded again (delisted) "
             f"exit at their last real price; a halted name exits at the open it re-opens on. No z-score filter. t-statistics and p-values use "
             f"Newey-West standard errors with at least P - 1 lags: the P-day windows of consecutive days overlap.</p>",
             f"<p>Mean factor rank autocorrelation (1 day): {sheet.rank_autocorrelation:.3f}</p>"]
    tables = [("Information coefficient", sheet.ic_summary)]
    if sheet.label_ic is not None and len(sheet.label_ic):
        tables.append(("Daily rank IC against each label (fwd_open_1d: next open to the open after, tradable; "
                       "fwd_1d: close to close, the book's)", sheet.label_ic))
    for name, table in [*tables, ("Mean return by quantile (bps, demeaned)",
                        sheet.mean_return_by_quantile), ("Top minus bottom quantile", sheet.spread),
                        ("Quantile turnover", sheet.turnover)]:
        parts.append(f"<h2>{name}</h2>{table.round(4).to_html()}")
    for name, png in sheet.figures.items():
        parts.append(f"<h2>{name}</h2><img src='data:image/png;base64,{base64.b64encode(png).decode()}'/>")
    parts.append("</body></html>")
    return "\n".join(parts)

