"""The study at a glance: what the lake holds about the whole study, read through the DuckDB catalog, rounded
to what each number means and with its unit, for the ``study_report`` asset and anyone reading the lake."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cnn_pipelines.storage import lake, objects
from cnn_pipelines.trading.evaluation.backtest import performance
from cnn_pipelines.trading.evaluation.metrics import daily_ic, mean_and_se, newey_west_se
from cnn_pipelines.trading.prices.checks import REJECTIONS, implausible_moves
from cnn_pipelines.trading.production.training import SCORE_COLUMN

# Below this many test days an IC's standard error is too wide to rank models or to trust a Sharpe ratio.
SHORT_SAMPLE_DAYS = 250


@dataclass
class StudyView:
    """Headline numbers (plottable floats and short strings), tables, and reasons for what is missing."""

    numbers: dict[str, float | int | str] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    verdict: str = ""


def backtest_figures(daily: pd.DataFrame) -> dict[str, float]:
    """Net Sharpe (annualized, 252 days), annual return and max drawdown (fractions), mean daily turnover: the
    backtest's own ``performance`` of its stored daily net returns."""
    net = performance(daily["net"].astype(float))
    return {"net_sharpe": net["sharpe"], "net_annual_return": net["annual_return"],
            "max_drawdown": net["max_drawdown"],
            "mean_daily_turnover": float(daily["turnover"].mean()) if len(daily) else float("nan")}


def leaderboard_display(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's columns a reader ranks models by, narrow enough to show whole: IC 4 decimals, its t 2,
    the top-minus-bottom spread in bps 1, net Sharpe 2 (turnover, returns and coverage are on model_leaderboard)."""
    return pd.DataFrame({
        "rank": board["rank"].astype(int), "model": board["model"].astype(str),
        "IC": board["mean_ic"].round(4), "s.e.": board["ic_se"].round(4), "t": board["ic_t"].round(2),
        "bps/day": board["top_minus_bottom_bps"].round(1), "net Sharpe": board["net_sharpe"].round(2),
    })


def leaderboard_trading(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's trading and coverage columns, the second narrow table beside ``leaderboard_display``:
    monthly IC (monthly models only), turnover and net annual return in %, coverage in % (five columns: the UI
    cuts a wider table at the metadata column's edge)."""
    return pd.DataFrame({
        "model": board["model"].astype(str), "monthly IC": board["monthly_ic"].round(4),
        "turnover %/day": (100 * board["mean_daily_turnover"]).round(1),
        "net return %/yr": (100 * board["net_annual_return"]).round(1),
        "coverage %": (100 * board["coverage"]).round(1),
    })


def tearsheets_display(sheets: pd.DataFrame) -> pd.DataFrame:
    """Each model's tearsheet headline (``model_tearsheets``) for its page: ICs 4 decimals, bps 1. Six columns
    at most: a seventh pushed the page's metadata past its right edge at 1600 px (the 1D t-stat is in the
    leaderboard, rank autocorrelation in each model's tearsheet)."""
    out = pd.DataFrame({"model": sheets.index.astype(str)})
    for c in [c for c in sheets.columns if c.startswith("ic_")]:
        out[f"IC {c[3:]}"] = sheets[c].astype(float).round(4).to_numpy()
    out["bps/day 1D"] = sheets["top_minus_bottom_bps_1D"].astype(float).round(1).to_numpy()
    return out


def study_view(root: Path, target: str, oracle=None) -> StudyView:
    """Everything the study report shows, from the lake at ``root``. ``oracle``: a callable giving the daily IC
    of the market's true expected returns on given (date, ticker, target) rows (the synthetic source's), or None.
    On object storage a month file replaced by another machine while DuckDB reads it is read again."""
    return lake.retry_replaced(lambda: _study_view(root, target, oracle))


def _study_view(root: Path, target: str, oracle=None) -> StudyView:
    view = StudyView()
    n = view.numbers
    catalog = lake.catalog_path(root)
    lake.sync_catalog(root)  # tables and views that assets on other machines added
    views = lake.catalog_views(root)
    if not views:
        view.missing["lake"] = (f"no catalog at {catalog}: materialize the trading job first" if views is not None
                                else f"the catalog {catalog} cannot be read: rebuild it (lake.rebuild_catalog)")
        view.verdict = "nothing to show yet"
        return view
    with lake.connect(root) as con:
        if "raw_prices" in views:
            rows, first, last, tickers = con.execute(
                "select count(*), min(date), max(date), count(distinct ticker) from raw_prices").fetchone()
            n.update({"price_rows": int(rows), "price_tickers": int(tickers),
                      "price_range": f"{first} .. {last}" if rows else "no rows"})
            # the data's health, as raw_prices' warnings have it over the whole lake
            held = set(con.execute("select * from raw_prices limit 0").df().columns)  # older lakes: no adjustment
            bars = con.execute(f"select {', '.join(c for c in ('ticker', 'date', 'close', 'adjustment') if c in held)} "
                               f"from raw_prices").df()
            n["implausible_moves"] = len(implausible_moves(bars))
            n["held_back_bars"] = (int(con.execute(f"select count(*) from {REJECTIONS}").fetchone()[0])
                                   if REJECTIONS in views else 0)
        else:
            view.missing["prices"] = "raw_prices is not in the lake: run price_history_job or trading_job"
        if "universe" in views:
            days, members, first, last = con.execute(
                "select count(distinct date), count(*) / nullif(count(distinct date), 0), min(date), max(date) "
                "from universe").fetchone()
            n.update({"feature_days": int(days), "feature_range": f"{first} .. {last}" if days else "no rows",
                      "universe_members_per_day": round(float(members or 0), 1)})
        if "oos_predictions" in views:
            preds = con.execute(f"select period, date, ticker, prediction, {target} from oos_predictions").df()
            blocks = [daily_ic(p["date"].to_numpy(), p["prediction"].to_numpy(), p[target].to_numpy(float))
                      for _, p in preds.groupby("period")]
            ic = pd.concat(blocks) if blocks else pd.Series(dtype=float)
            mean, _ = mean_and_se(ic)
            periods = sorted(str(p)[:10] for p in preds["period"].unique())
            n.update({"periods": len(periods), "period_range": f"{periods[0][:7]} .. {periods[-1][:7]}" if periods
                      else "none", "oos_ic": round(mean, 4), "oos_ic_se": round(newey_west_se(blocks), 4),
                      "oos_days": int(len(ic)), "target": target})
            if oracle is not None and len(preds):
                o = oracle(preds[["date", "ticker", target]].assign(date=pd.to_datetime(preds["date"]).dt.date))
                n["oracle_ic"] = round(float(o.mean()), 4) if len(o) else "n/a (no rows)"
        else:
            view.missing["predictions"] = "no out-of-sample predictions: run research_job for some months"
        board = None
        if "model_leaderboard" in views:
            board = con.execute("select * from model_leaderboard order by rank").df()
            view.tables["leaderboard"] = leaderboard_display(board)
            if len(board):
                n["leader"] = str(board["model"].iloc[0])
                n["leaderboard_rows"] = ("the rows every model predicts: its cnn_ta IC and net Sharpe differ a "
                                         "little from oos_ic's and net_sharpe's, which score every cnn_ta row")
        else:
            view.missing["leaderboard"] = "not built: run evaluation_job"
        if "backtest" in views:
            daily = con.execute("select * from backtest order by date").df()
            b = backtest_figures(daily)
            n.update({"backtest_days": len(daily), "net_sharpe": round(b["net_sharpe"], 2),
                      "net_annual_return_pct": round(b["net_annual_return"] * 100, 1),
                      "max_drawdown_pct": round(b["max_drawdown"] * 100, 1),
                      "turnover_pct_per_day": round(b["mean_daily_turnover"] * 100, 1)})
        else:
            view.missing["backtest"] = "not built: run evaluation_job"
        if "daily_signals" in views:
            signals = con.execute("""select trade_date, ticker, side, rank, prediction from daily_signals
                                     where date = (select max(date) from daily_signals) and side in ('long', 'short')
                                     order by side, rank""").df()
            if len(signals):
                n["signals_for"] = str(signals["trade_date"].iloc[0])[:10]
            view.tables["signals"] = signals.drop(columns=["trade_date", "prediction"]).assign(
                **{SCORE_COLUMN: signals["prediction"].astype(float).round(3)})
        else:
            view.missing["signals"] = "no signals yet: run nightly_job"
    summary = lake.artifact_dir(root, "reports", "factor_tearsheet") / "summary.json"
    objects.pull(summary)  # written on another machine of a cluster
    if summary.exists():
        s = lake.read_json(summary)
        n.update({"tearsheet_ic_1d": round(s["ic"]["ic_mean"]["1D"], 4),
                  "tearsheet_days": int(s.get("sample", {}).get("days", 0)),
                  "tearsheet_top_minus_bottom_bps": round(s["spread"]["top_minus_bottom_bps"]["1D"], 1)})
    else:
        s = None
        view.missing["tearsheet"] = "not built: run evaluation_job"
    sources = ic_sources(n, board, s, target)
    if len(sources) > 1:
        view.tables["ic_by_source"] = sources
    view.verdict = verdict(n)
    return view


def ic_sources(n: dict, board: pd.DataFrame | None, sheet: dict | None, target: str, model: str = "cnn_ta"
               ) -> pd.DataFrame:
    """Why the study shows up to three ICs of the same model (``model``: the leaderboard's name for the CNN):
    each scores other rows. The study's own scores every out-of-sample row against ``target``; the leaderboard's
    only the rows every model predicts; the tearsheet's alphalens' 1-day trade returns, only on days on which
    every horizon it reports is realized (its longest cuts the newest days) and names with a bar at the next
    open."""
    rows = []
    if "oos_ic" in n:
        rows.append({"where": "study (oos_ic)", "IC": n["oos_ic"], "days": n["oos_days"],
                     "rows scored": f"every out-of-sample row of {model}, against {target}"})
    mine = board[board["model"] == model] if board is not None and len(board) else None
    if mine is not None and len(mine):
        rows.append({"where": "model_leaderboard", "IC": round(float(mine["mean_ic"].iloc[0]), 4),
                     "days": int(mine["days"].iloc[0]),
                     "rows scored": f"the rows all {len(board)} models predict, against {target}"})
    if sheet is not None:
        horizons = list(sheet.get("ic", {}).get("ic_mean", {}))
        sample = sheet.get("sample", {})
        rows.append({"where": "factor_tearsheet (1D)", "IC": round(float(sheet["ic"]["ic_mean"]["1D"]), 4),
                     "days": int(sample.get("days", 0)),
                     "rows scored": f"1-day open-to-open returns on days up to {sample.get('last_date', 'n/a')}, "
                                    f"when all of {', '.join(horizons)} are realized; names with a bar at the "
                                    "next open"})
    return pd.DataFrame(rows, columns=["where", "IC", "days", "rows scored"])


def verdict(n: dict) -> str:
    """One sentence on what the OOS IC can and cannot say."""
    if "oos_ic" not in n:
        return "no out-of-sample predictions yet"
    days, ic, se = n["oos_days"], n["oos_ic"], n["oos_ic_se"]
    z = ic / se if se and se > 0 else float("nan")
    text = f"OOS IC {ic:+.4f} (Newey-West s.e. {se:.4f}, z {z:.1f}) over {days} test days"
    if isinstance(n.get("oracle_ic"), float):
        text += f"; the market's own expected returns score {n['oracle_ic']:+.4f} on the same rows"
    if days < SHORT_SAMPLE_DAYS:
        text += (f". {days} days is too short to judge a strategy (a year is about 250): read the IC and its s.e., "
                 f"not the Sharpe ratio")
    return text
