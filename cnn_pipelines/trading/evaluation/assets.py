"""Evaluation assets over every materialized walk-forward period: alphalens factor tearsheet and a
long-short backtest with costs. Reports land in ``data_lake/reports/``."""

from pathlib import Path

import dagster as dg
import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_output, asset_result, inline, percent, short_list, table_value
from cnn_pipelines.storage import lake
from cnn_pipelines.trading.prices.adjustments import adjust_as_of
from cnn_pipelines.trading.prices.assets import raw_prices
from cnn_pipelines.trading.features.assets import SETTINGS
from cnn_pipelines.trading.research.assets import CALENDAR, RS, oos_predictions
from cnn_pipelines.trading.features.panel import target_columns
from cnn_pipelines.trading.evaluation.backtest import run_backtest
from cnn_pipelines.trading.evaluation.leaderboard import build_leaderboard, same_rows
from cnn_pipelines.trading.evaluation.metrics import oos_ic, seed_ic_spread
from cnn_pipelines.trading.evaluation.study_view import leaderboard_display, leaderboard_trading, tearsheets_display
from cnn_pipelines.trading.research.model_assets import MODEL_PREDICTIONS, MONTHLY_MODELS, PREDICTION_TABLES
from cnn_pipelines.plots import date_axis, heatmap, markdown_image, png_bytes, rounded
from cnn_pipelines.trading.settings import current_evaluation_settings
from cnn_pipelines.trading.evaluation.tearsheet import factor_tearsheet as build_tearsheet
from cnn_pipelines.trading.evaluation.tearsheet import Tearsheet, to_html, to_tables

ES = current_evaluation_settings()


class BacktestConfig(dg.Config):
    top_k: int = ES.top_k
    cost_bps: float = ES.cost_bps


def reports_dir(name: str) -> Path:
    d = lake.artifact_dir(lake.default_root(), "reports", name)  # a local mirror for a lake on object storage
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_predictions(root: Path) -> pd.DataFrame:
    """Every materialized period of oos_predictions with its realized labels (all of them: the jump rule
    filters training rows only), or a clear error."""
    keys = lake.materialized_keys(root, "oos_predictions", "period")
    if not keys:
        raise lake.MissingPartitionsError("oos_predictions", ["(no period materialized yet)"])
    preds = lake.read_partitions(root, "oos_predictions", keys, "period")
    return preds[["date", "ticker", "prediction", *target_columns(SETTINGS)]]


def load_prices_after(root: Path, first: str) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """raw_prices from ``first`` to the newest materialized partition (forward returns need the days after),
    and the exchange sessions over that range."""
    keys = [k for k in lake.materialized_keys(root, "raw_prices") if k >= first]
    prices = adjust_as_of(lake.read_partitions(root, "raw_prices", keys))
    return prices, CALENDAR.sessions(keys[0], keys[-1]) if keys else pd.DatetimeIndex([])


def _save_png(path: Path, png: bytes) -> None:
    lake.write_bytes(path, png)  # atomic, and uploaded when the lake is on object storage


def write_report(sheet, out: Path, title: str) -> Path:
    """A tearsheet's figures (PNG), summary.json and self-contained tearsheet.html in ``out``, each written
    atomically; returns the HTML's path."""
    for name, png in sheet.figures.items():
        _save_png(out / f"{name}.png", png)
    lake.write_json(out / "summary.json", {"sample": sheet.sample, "ic": sheet.ic_summary.to_dict(),
                                           "spread": sheet.spread.to_dict(), "target": RS.target,
                                           "label_ic": sheet.label_ic.to_dict(orient="index")})
    html = out / "tearsheet.html"
    lake.write_bytes(html, to_html(sheet, title).encode())
    return html


def sample_days_note(sheet: Tearsheet, target: str) -> str:
    """Why the tearsheet's 1D IC covers fewer days than ``ic_<target>``: alphalens keeps a day only when every
    horizon it reports is realized, so the longest cuts the newest days."""
    s, longest = sheet.sample, str(sheet.ic_summary.index[-1])
    label = sheet.label_ic.loc[target] if sheet.label_ic is not None and target in sheet.label_ic.index else None
    every = f"; ic_{target} scores every realized day of the label ({int(label['days'])})" if label is not None else ""
    pending = (f"; {s['horizons_not_yet_realized']} not realized on any day yet, so left out"
               if s.get("horizons_not_yet_realized") else "")
    return (f"{s['days']} days, {s['first_date']} .. {s['last_date']}: alphalens keeps a day only when every horizon "
            f"up to {longest} is realized, so the newest days are left out of its tables{pending}{every}")


@dg.asset(deps=[oos_predictions, raw_prices], group_name="evaluation", kinds={"alphalens"})
def factor_tearsheet(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Alphalens on all out-of-sample predictions against open-to-open trade returns from real bars (never
    forward-filled): IC per horizon and per label, returns by quantile, top-minus-bottom spread, turnover,
    rank autocorrelation; HTML and PNGs in reports/."""
    root = lake.default_root()
    preds = load_predictions(root)
    prices, sessions = load_prices_after(root, str(min(preds["date"])))
    sheet = build_tearsheet(preds, prices, ES.periods, ES.quantiles, sessions)
    html = write_report(sheet, reports_dir("factor_tearsheet"), "CNN-TA out-of-sample factor tearsheet")
    meta = {
        # The whole tearsheet is below (tables and figures); the HTML file is for reading outside the UI.
        "report_file": dg.MetadataValue.path(str(html.resolve())),
        "ic_mean_1d": rounded(sheet.ic_summary.iloc[0]["ic_mean"]),
        "ic_t_stat_1d": rounded(sheet.ic_summary.iloc[0]["t_stat"], 2),
        "days_scored": sample_days_note(sheet, RS.target),
        "top_minus_bottom_bps_1d": rounded(sheet.spread.iloc[0]["top_minus_bottom_bps"], 1),
        "rank_autocorrelation": rounded(sheet.rank_autocorrelation, 3, "n/a (fewer than two dates)"),
        **{f"ic_{label}": rounded(row["ic_mean"], 4, "n/a (no realized labels)")
           for label, row in sheet.label_ic.iterrows()},
        "trained_on": RS.target,
        "last_price_exits": (table_value(sheet.exits.head(50).astype(str)) if len(sheet.exits) else
                             dg.MetadataValue.text("none: every position exited at a real open")),
        "sample": inline(sheet.sample),
        **{k: table_value(v) for k, v in to_tables(sheet).items()},
        **{f"figure_{k}": dg.MetadataValue.md(markdown_image(v, k)) for k, v in sheet.figures.items()},
    }
    context.log.info(f"tearsheet: 1D IC {meta['ic_mean_1d']}, t {meta['ic_t_stat_1d']}, report {html}")
    return asset_result(context, meta)


STATS_SHOWN = (  # backtest statistic, how its table names it, scale, decimals
    ("total_return", "total return %", 100, 1), ("annual_return", "annual return %", 100, 1),
    ("annual_volatility", "annual volatility %", 100, 1), ("sharpe", "Sharpe, net", 1, 2),
    ("gross_sharpe", "Sharpe, gross", 1, 2), ("max_drawdown", "max drawdown %", 100, 1),
    ("mean_daily_turnover", "turnover %/day (n/a: held, not traded)", 100, 1), ("beta", "beta to the universe", 1, 3))


def stats_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Backtest statistics as the asset page shows them, one row each: shares in %, Sharpe 2 decimals, beta 3;
    a cell that does not apply (the equal-weight universe has no turnover) reads "n/a"."""
    rows = [{"statistic": label, **{book: round(float(stats.loc[key, book]) * scale, digits)
                                    for book in stats.columns}}
            for key, label, scale, digits in STATS_SHOWN if key in stats.index]
    return pd.DataFrame(rows)


@dg.asset(deps=[oos_predictions, raw_prices], group_name="evaluation", io_manager_key="lake", kinds={"pandas"})
def backtest(context: dg.AssetExecutionContext, config: BacktestConfig):
    """Daily long top-K / short bottom-K at the next open with costs, against the equal-weighted universe."""
    root = lake.default_root()
    preds = load_predictions(root)
    prices, sessions = load_prices_after(root, str(min(preds["date"])))
    res = run_backtest(preds, prices, config.top_k, config.cost_bps, sessions)
    if len(res.events):
        context.log.warning(f"backtest: {len(res.events)} position-days without a real bar at entry or exit: "
                            f"{res.events['event'].value_counts().to_dict()}")
    daily = res.daily
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for col, label in [("net", f"long-short net ({config.cost_bps:g} bps/side)"), ("gross", "long-short gross"),
                       ("benchmark", "equal-weight universe")]:
        ax.plot(daily["date"], (1 + daily[col]).cumprod() - 1, lw=1.2, label=label)
    ax.axhline(0, color="gray", lw=0.6)
    ax.legend()
    ax.set_ylabel("cumulative return")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    date_axis(ax)
    fewest = int(preds.groupby("date").size().min())
    k_text = f"K = {config.top_k} per side" + (f" ({fewest // 2} on days with {fewest} names)"
                                               if fewest < 2 * config.top_k else "")
    ax.set_title(f"Cumulative return, {k_text}, trading at the next open")
    png = png_bytes(fig)
    _save_png(reports_dir("backtest") / "equity_curve.png", png)
    s = res.stats["long_short"]
    context.log.info(f"backtest: Sharpe {s['sharpe']:.2f}, annual return {s['annual_return']:.2%}, "
                     f"max drawdown {s['max_drawdown']:.2%}")
    return asset_output(context, daily, {
        "days": len(daily), "first_date": str(daily["date"].min().date()), "last_date": str(daily["date"].max().date()),
        "sharpe": rounded(s["sharpe"], 2, "n/a (no return variance)"),
        "annual_return_pct": percent(s["annual_return"], 1),
        "annual_volatility_pct": percent(s["annual_volatility"], 1),
        "max_drawdown_pct": percent(s["max_drawdown"], 1),
        "turnover_pct_per_day": percent(s["mean_daily_turnover"], 1),
        "beta": rounded(s["beta"], 3, "n/a (benchmark has no variance)"),
        "top_k": config.top_k, "cost_bps": config.cost_bps,
        "min_names_per_day": fewest,
        "positions_without_real_bar": (table_value(position_events(res.events)) if len(res.events) else
                                       dg.MetadataValue.text("none: every position entered and exited at a real open")),
        "positions_without_real_bar_total": len(res.events),
        "stats": table_value(stats_table(res.stats)),
        "equity_curve": dg.MetadataValue.md(markdown_image(png, "equity curve")),
    })


EVENT_LABELS = {"exited at last real price": "exit at last price", "halted: exited at the re-open": "exit at re-open",
                "no bar at the entry open: held cash": "no entry: cash"}


def position_events(events: pd.DataFrame, limit: int = 20) -> pd.DataFrame:
    """The first ``limit`` position-days without a real bar, with short labels: three narrow columns, so the
    day is never wrapped as "2026-09-" / "11" beside a long label."""
    shown = events.head(limit)
    return pd.DataFrame({"day": pd.to_datetime(shown["date"]).dt.strftime("%Y-%m-%d"),
                         "ticker": shown["ticker"].astype(str),
                         "what": shown["event"].map(lambda e: EVENT_LABELS.get(e, e))})


def load_model_predictions(root: Path, tables: dict[str, str], target: str) -> pd.DataFrame:
    """Every model's predictions on the periods ALL models have (so each is scored on the same rows)."""
    periods = None
    for table in tables.values():
        keys = set(lake.materialized_keys(root, table, "period"))
        periods = keys if periods is None else periods & keys
    if not periods:
        missing = [t for t in tables.values() if not lake.materialized_keys(root, t, "period")]
        raise lake.MissingPartitionsError(", ".join(missing) or "model predictions",
                                          ["(no research period that every model has)"])
    keys = sorted(periods)
    frames = [lake.read_partitions(root, table, keys, "period")[["period", "date", "ticker", "prediction", target]]
              .assign(model=model) for model, table in tables.items()]
    # a name a model has no prediction for (ar_cnn: fewer than 12 months of history) is not in its book
    return pd.concat(frames, ignore_index=True).dropna(subset=["prediction"])


def model_predictions_view(root: Path, tables: dict[str, str]) -> None:
    """``model_predictions``: every model's out-of-sample predictions in one DuckDB view keyed by (model, period,
    date, ticker), e.g. ``select model, avg(prediction) from model_predictions group by model``."""
    parts = [f"SELECT '{model}' AS model, * FROM {table}" for model, table in tables.items()]
    lake.define_view(root, "model_predictions", " UNION ALL BY NAME ".join(parts))


def model_tearsheets(preds: pd.DataFrame, prices: pd.DataFrame, sessions: pd.DatetimeIndex, out: Path) -> pd.DataFrame:
    """The factor tearsheet of each model's predictions (``out/<model>/tearsheet.html`` and its figures), and
    one row of headline numbers per model."""
    rows = {}
    for model, f in preds.groupby("model", sort=True):
        sheet = build_tearsheet(f[["date", "ticker", "prediction", RS.target]], prices, ES.periods, ES.quantiles,
                                sessions, name=str(model))
        folder = out / str(model)
        folder.mkdir(parents=True, exist_ok=True)
        html = write_report(sheet, folder, f"{model}: out-of-sample factor tearsheet")
        ic, spread = sheet.ic_summary, sheet.spread
        rows[model] = {**{f"ic_{p}": ic.loc[p, "ic_mean"] for p in ic.index},
                       "t_1D": ic["t_stat"].iloc[0], "top_minus_bottom_bps_1D": spread["top_minus_bottom_bps"].iloc[0],
                       "rank_autocorrelation": sheet.rank_autocorrelation, "report": html.resolve()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


@dg.asset(deps=[oos_predictions, *MODEL_PREDICTIONS, raw_prices], group_name="evaluation", io_manager_key="lake",
          kinds={"pandas"})
def model_leaderboard(context: dg.AssetExecutionContext, config: BacktestConfig):
    """CNN-TA and the comparison models on the same walk-forward periods and rows: mean daily rank IC (t-stat),
    the monthly IC of monthly models, top-minus-bottom quintile spread, turnover and net Sharpe of the
    long-short book after costs, IC by period, the rank correlation between the models' predictions, and a
    factor tearsheet per model (reports/model_leaderboard/MODEL/tearsheet.html)."""
    root = lake.default_root()
    preds = load_model_predictions(root, PREDICTION_TABLES, RS.target)
    # from a week before the first test day: the first month's monthly IC needs the previous month-end close
    prices, sessions = load_prices_after(root, str((pd.Timestamp(min(preds["date"])) - pd.Timedelta(days=10)).date()))
    board = build_leaderboard(preds, prices, RS.target, config.top_k, config.cost_bps, sessions, MONTHLY_MODELS)
    common = same_rows(preds)[0]
    sheets = model_tearsheets(common, prices, sessions, reports_dir("model_leaderboard"))
    model_predictions_view(root, PREDICTION_TABLES)
    lim = max(0.05, float(np.nanmax(np.abs(board.period_ic.to_numpy())))) if board.period_ic.size else 0.05
    heat = heatmap(board.period_ic.T.rename(columns=lambda p: str(p)[:7]),
                   f"Mean daily rank IC vs {RS.target} by test month", -lim, lim)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for model in board.net_returns.columns:
        ax.plot(board.net_returns.index, (1 + board.net_returns[model].fillna(0)).cumprod() - 1, lw=1.3, label=model)
    ax.axhline(0, color="gray", lw=0.6)
    ax.set_ylabel("cumulative net return")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    date_axis(ax)
    ax.set_title(f"Long-short top/bottom {config.top_k}, next open, {config.cost_bps:g} bps/side, by model")
    ax.legend()
    curves = png_bytes(fig)
    _save_png(reports_dir("model_leaderboard") / "net_returns.png", curves)
    shown = board.table.copy()
    days = int(shown["days"].min()) if len(shown) else 0
    context.log.info("model leaderboard:\n" + shown.round(4).to_string(index=False))
    unscored = not_scored(board.table)
    if unscored:
        context.log.warning(f"not on the leaderboard: {', '.join(unscored)}: predicted nothing in these periods "
                            "(its asset's `fitted` says why, e.g. too few names to fit)")
    return asset_output(context, board.table, {
        "models": ", ".join(board.table["model"].astype(str)), "target": RS.target,
        "not_scored": short_list(f"{m} (predicted nothing)" for m in unscored),
        "periods": int(preds["period"].nunique()), "days": days,
        "leader": str(board.table["model"].iloc[0]) if len(board.table) else "n/a",
        "leaderboard": table_value(leaderboard_display(board.table)),
        "trading": table_value(leaderboard_trading(board.table)),
        "prediction_rank_correlation": table_value(board.prediction_corr.astype(float).round(3).rename_axis(
            "model").reset_index()),
        "ic_by_period": dg.MetadataValue.md(markdown_image(heat, "IC by period")),
        "net_returns": dg.MetadataValue.md(markdown_image(curves, "cumulative net returns")),
        "tearsheets": table_value(tearsheets_display(sheets)),
        "tearsheet_folder": dg.MetadataValue.path(str(reports_dir("model_leaderboard").resolve())),
        "tearsheet_files": f"MODEL/tearsheet.html in that folder, for {', '.join(sheets.index.astype(str))}",
        "sample": sample_note(common, preds),
        "note": f"{days} test days: differences between models smaller than about two IC standard errors are noise. "
                + seed_note(root, sorted(preds["period"].astype(str).unique())),
    })


def not_scored(table: pd.DataFrame) -> list[str]:
    """The models of ``PREDICTION_TABLES`` absent from a leaderboard table: they predicted no row (ar_cnn on a
    universe too small to fit it)."""
    return [m for m in PREDICTION_TABLES if m not in set(table["model"].astype(str))]


def sample_note(common: pd.DataFrame, preds: pd.DataFrame) -> str:
    """Which rows the leaderboard scores (``common``: ``same_rows`` of ``preds``), and why its cnn_ta figures
    differ a little from factor_tearsheet's and backtest's (those score every row cnn_ta predicts)."""
    own = int(preds.loc[preds["model"] == "cnn_ta", "prediction"].notna().sum())
    per_model = int(len(common) / max(common["model"].nunique(), 1))
    return (f"{per_model} (date, ticker) rows that every model predicts, of cnn_ta's {own}: factor_tearsheet and "
            f"backtest score all of cnn_ta's rows, so their cnn_ta figures differ from these by a little")


def seed_note(root: Path, periods: list[str]) -> str:
    """How much of cnn_ta's IC is training noise: its members' IC spread where it averages several seeds."""
    oos = lake.read_partitions(root, "oos_predictions", periods, "period")
    cols = [c for c in oos.columns if c.startswith("prediction_seed")]
    if not cols:
        return ("cnn_ta is one seed's model, so its training noise is not measured here (seeds: 3 in "
                "cnn_pipelines.yaml reports its IC across seeds; reordering its training rows alone, as renaming "
                "tickers does, has moved its IC by 0.04).")
    seeded = oos.loc[oos[cols].notna().all(axis=1)]  # periods trained before seeds were set have one model
    s = seed_ic_spread(seeded, RS.target)
    _, se, n = oos_ic(seeded, RS.target)
    months = seeded["period"].nunique()
    return (f"cnn_ta averages {s['seeds']} seeds in {months} of {oos['period'].nunique()} months: over those "
            f"months their ICs {s['ic_by_seed']} spread by {s['ic_seed_spread']:.4f} (sd across seeds), beside "
            f"the ensemble's IC s.e. of {se:.4f} over {n} days.")


# It reads nothing from the lake (it builds its own markets and lake), but it audits the code that produces
# oos_predictions: the dependency shows that lineage and marks the audit stale when that pipeline reruns.
@dg.asset(group_name="evaluation", io_manager_key="lake", kinds={"keras"}, deps=[oos_predictions],
          metadata={"how_to_run": "not part of make run (it takes minutes): make run ARGS=--audit, or launch audit_job"},
          check_specs=[dg.AssetCheckSpec("no_leakage", asset="leakage_audit",
                                         description="null-market IC ~ 0 (s.e. <= 0.015), planted signal recovered, "
                                                     "and the planted one-day leak flagged. Not evaluated until "
                                                     "the audit runs: make run ARGS=--audit, or launch audit_job "
                                                     "(minutes)")])
def leakage_audit(context: dg.AssetExecutionContext):
    """The real pipeline (raw_prices ... oos_predictions, in a lake of its own) on synthetic markets with
    listings, delistings and missing bars: a null market over several seeds and months, a planted signal,
    and a control with the features shifted one day into the future, which the audit must flag; ridge, hgb
    and ar_cnn on the same null markets, ridge and hgb on the same leak; then every model again under a retrain
    cadence of two months (models reused for the month after their retrain)."""
    from cnn_pipelines.trading.evaluation.audit import CADENCE_AUDIT, FULL_AUDIT, MAX_SE, run_audit, verdict

    table = pd.concat([run_audit(FULL_AUDIT, log=context.log.info), run_audit(CADENCE_AUDIT, log=context.log.info)])
    ok, why = verdict(table)
    context.log.info(f"leakage audit: {why}")
    meta = {f"{m.split(' (')[0].replace(' ', '_').replace(':', '')}_{k}": rounded(table.loc[m, k], 4)
            for m in table.index if ": " not in m for k in ("ic", "se")}
    yield asset_output(context, table.reset_index(), {
        **meta, "planted_oracle_ic": rounded(table.loc["planted signal", "oracle_ic"], 4), "max_null_se": MAX_SE,
        "target": RS.target, "verdict": why, "table": table_value(table.round(4).rename_axis("market").reset_index()),
    })
    yield dg.AssetCheckResult(check_name="no_leakage", passed=ok, severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"verdict": why})
