"""`make run`: materialize the main job over the demo range as one Dagster run, then print a summary."""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._core.storage.dagster_run import DagsterRun

from cnn_pipelines.storage import lake, objects
from cnn_pipelines.launch import launch
from cnn_pipelines.plan_inputs import unmet_inputs
from cnn_pipelines.trading.features.assets import LOOKAHEAD
from cnn_pipelines.trading.production.assets import TRAIN_WEEKDAYS
from cnn_pipelines.trading.research.assets import CHAIN_START_TAG, RS, _window, research_partitions, retrain_plan
from cnn_pipelines.trading.research.model_assets import _months_window
from cnn_pipelines.trading.partitions import PARTITIONS_START, weekday_partitions
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.evaluation.metrics import MIN_NAMES, oos_ic
from cnn_pipelines.trading.settings import current_settings
from cnn_pipelines.instance import fail_dead_runs
from cnn_pipelines.instance import prepare as prepare_instance
from cnn_pipelines.vision.definitions import DEMO_RUN_CONFIG as VISION_DEMO_RUN_CONFIG
from cnn_pipelines.vision.reports import seeds_text

SETTINGS = current_settings()

class PlanError(SystemExit):
    """The arguments ask for something the data cannot support; raised before any run starts."""


@dataclass
class Plan:
    """What `main` materializes, in order, and why the range is what it is."""

    start: str                                  # first weekday partition of the feature range
    end: str                                    # last one
    history: tuple[str, str] | None             # raw_prices look-back (indicator warm-up)
    lookahead: tuple[str, str] | None           # raw_prices after the end that forward labels need
    periods: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    audit: bool = False                         # also run the leakage audit (minutes; its own markets)
    vision: bool = True                         # also materialize the vision graphs (demo sizes)

    def runs(self) -> list[tuple[str, str, str]]:
        out = [("price_history_job", *r) for r in (self.history, self.lookahead) if r]
        out.append(("trading_job", self.start, self.end))
        out += [("research_job", p, p) for p in self.periods]
        if self.periods:
            out.append(("evaluation_job", "", ""))
        out.append(("nightly_job", self.end, self.end))
        if self.audit:
            out.append(("audit_job", "", ""))
        if self.vision:
            out.append(("vision_job", "", ""))
        return out


def _key_at_or_after(keys: list[str], day: str) -> int:
    i = bisect.bisect_left(keys, day)
    if i == len(keys):
        raise PlanError(f"{day} is after the newest partition {keys[-1]}")
    return i


def plan(end: str | None = None, days: int = 520, start: str | None = None, periods: int = 3,
         coverage: tuple[dt.date, dt.date] | None = None, keys: list[str] | None = None) -> Plan:
    """Plan the main job's ranges: the feature range [start, end] (widened so every chosen test period has
    its whole training window and the nightly model its trailing window), the raw_prices look-back and
    look-ahead, and the test periods. ``coverage`` (first, last date the source holds) lets the plan fail
    up front, naming what is missing, instead of a run failing halfway."""
    keys = keys or weekday_partitions.get_partition_keys()
    notes: list[str] = []
    end_arg = end
    if end is None:
        i_end = len(keys) - 1
        if coverage and str(coverage[1]) < keys[i_end]:
            i_end = bisect.bisect_right(keys, str(coverage[1])) - 1
            notes.append(f"--end defaults to the last date the prices hold, {keys[i_end]}")
    else:
        i_end = bisect.bisect_right(keys, end) - 1
        if i_end < 0:
            raise PlanError(f"--end {end} is before the first partition {keys[0]} (set partitions_start earlier in "
                            f"cnn_pipelines.yaml, or CNN_PARTITIONS_START)")
        if keys[i_end] != end:
            notes.append(f"--end {end} is not a weekday; using {keys[i_end]}")
    end = keys[i_end]
    if coverage and str(coverage[1]) < end:
        raise PlanError(f"the prices end on {coverage[1]}, before --end {end}: nothing to build after that day. "
                        f"Use --end {coverage[1]} or earlier, or add newer prices.")
    i_start = _key_at_or_after(keys, start) if start else max(0, i_end - days + 1)
    if i_start > i_end:
        raise PlanError(f"--start {start} is after --end {end}")
    warmup = SETTINGS.universe_lookback  # weekdays of prices before the first feature date
    first_ok = _key_at_or_after(keys, str(coverage[0])) + warmup if coverage else 0
    if not start and i_start < first_ok:  # the default range begins no earlier than the prices allow
        notes.append(f"the range starts on {keys[min(first_ok, i_end)]}: the prices start on {coverage[0]} and "
                     f"the universe needs {warmup} weekdays of history")
        i_start = min(first_ok, i_end)
    chosen = research_periods(end, periods)
    if periods and len(chosen) < periods:
        refusal = too_few_periods(periods, chosen, end, coverage, end_given=end_arg is not None)
        if not chosen:
            raise PlanError(refusal)
        notes.append(refusal)
    if chosen and RS.retrain_every > 1:  # a month between retrains reads its retrain month's model
        anchor = retrain_plan(chosen[0])[0]
        if anchor < chosen[0]:
            notes.append(f"test periods widened from {chosen[0]} to {anchor}: with retrain_every={RS.retrain_every}, "
                         f"{chosen[0]} is predicted by the model fitted for {anchor}")
            chosen = [k for k in research_partitions.get_partition_keys() if anchor <= k <= chosen[-1]]
    # What each part of the plan needs as its first feature date; the earliest sets the range.
    needs = {f"--start {keys[i_start]}" if start else f"the range of {days} weekdays": i_start,
             f"the nightly model trains on the {TRAIN_WEEKDAYS} weekdays before {end}": max(0, i_end - TRAIN_WEEKDAYS)}
    if chosen:  # asked of the research assets' own partition mappings, so the plan cannot disagree with them
        first_train = min(research_window(_window("indicator_panel"), p)[0] for p in chosen)
        needs[f"the test periods {chosen[0]}..{chosen[-1]} train on the {RS.train_months} months before each"] = \
            _key_at_or_after(keys, first_train)
    need_key = min(needs.values())
    why = "; ".join(k for k, v in needs.items() if v == need_key)
    if need_key < i_start:
        notes.append(f"feature range widened from {keys[i_start]} to {keys[need_key]}: {why}")
        i_start = need_key
    if coverage and first_ok > i_start:
        if first_ok > i_end:
            raise PlanError(f"the prices start on {coverage[0]}: with {warmup} weekdays of history needed before "
                            f"the first feature date, nothing up to {end} can be built. Add older prices.")
        raise PlanError(f"{why}: that needs features from {keys[i_start]} and prices from "
                        f"{keys[max(0, i_start - warmup)]} (the universe's {warmup}-weekday history), but the prices "
                        f"start on {coverage[0]}. Use a later --end, fewer --periods (each needs {RS.train_months} "
                        f"months of training history), or older prices.")
    lo = max(0, i_start - SETTINGS.price_lookback)
    if chosen:  # ar_cnn reads raw prices over its lags before the training window
        lo = min(lo, _key_at_or_after(keys, min(research_window(_months_window("raw_prices"), p)[0] for p in chosen)))
    # Partitions before the prices' first day are built too (empty, like holidays): the indicators' windows read
    # them, and a partition that was never materialized would fail the run halfway.
    history = (keys[lo], keys[i_start - 1]) if lo < i_start else None
    if coverage and history and history[0] < str(coverage[0]):
        notes.append(f"raw_prices {history[0]}..{coverage[0]} come before the prices' first day: materialized empty, "
                     f"so the first features have less indicator warm-up than {SETTINGS.price_lookback} weekdays")
    ahead = keys[i_end + 1: i_end + 1 + LOOKAHEAD]
    if coverage:
        ahead = [k for k in ahead if k <= str(coverage[1])]
    lookahead = (ahead[0], ahead[-1]) if ahead else None
    if not ahead:
        notes.append(f"no prices after {end} yet: labels that need them stay unrealized (NaN) until they land")
    return Plan(keys[i_start], end, history, lookahead, chosen, notes)


def research_window(asset_in: dg.AssetIn, period: str) -> tuple[str, str]:
    """First and last weekday partition a research asset reads for ``period`` through ``asset_in``'s mapping
    (a month's window starts on the weekday partition that overlaps its first day, e.g. a Friday)."""
    result = asset_in.partition_mapping.get_upstream_mapped_partitions_result_for_partitions(
        research_partitions.subset_with_partition_keys([period]), research_partitions, weekday_partitions)
    mapped = result.partitions_subset.get_partition_keys()
    return (min(mapped), max(mapped)) if mapped else (period, period)


def check_inputs(the_plan: Plan, root: Path) -> list[str]:
    """What the plan's runs would read and nobody builds, asked of the assets' partition mappings (plan_inputs.py);
    partitions the lake already holds count."""
    from cnn_pipelines.definitions import defs

    have = {t: set(lake.materialized_keys(root, t)) for t in ("raw_prices", "universe", "indicator_panel",
                                                             "forward_returns")}
    return unmet_inputs(the_plan.runs(), defs, have) + unmet_models(the_plan.periods, root)


def unmet_models(periods: list[str], root: Path) -> list[str]:
    """Test periods between retrains whose retrain month's model neither the plan nor the lake holds (that read
    is not a partition mapping: the month loads the anchor's checkpoints by name)."""
    out = []
    for p in periods:
        anchor = retrain_plan(p)[0]
        built = anchor in periods or lake.partition_path(root, "cnn_model", anchor, "period", "data.json").exists()
        if not built:
            out.append(f"research_job {p}: predicted by the model fitted for {anchor} (retrain_every="
                       f"{RS.retrain_every}), which neither the lake nor the plan holds")
    return out


def run_job(name: str, start: str, end: str, instance: dg.DagsterInstance, console: str = "WARNING",
            tags: dict[str, str] | None = None) -> DagsterRun:
    """Run job ``name`` of the code location as ONE run recorded in ``instance`` (so the UI lists it under its
    job): unpartitioned (no start), one partition (start == end) or the partition range [start, end]. The
    terminal shows the run's events from level ``console`` up; every event is in the run's log either way."""
    config = {**(VISION_DEMO_RUN_CONFIG if name == "vision_job" else {}),  # demo sizes; the defaults use all data
              "loggers": {"console": {"config": {"log_level": console}}}}
    if not start:
        return launch(instance, name, run_config=config, tags=tags)
    if start == end:
        return launch(instance, name, partition=start, run_config=config, tags=tags)
    return launch(instance, name, partition_range=(start, end), run_config=config, tags=tags)


def failure_lines(instance: dg.DagsterInstance, run_id: str, limit: int = 3) -> list[str]:
    """What failed in a run, one line per failed step (its error's first line), for a terminal that does not
    print the run's events."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    out = []
    for entry in records[:limit]:
        error = entry.dagster_event.step_failure_data.error
        while error is not None and error.cause is not None:  # Dagster wraps the user's error: show the user's
            error = error.cause
        message = (error.message if error else "no error recorded").strip().splitlines()
        out.append(f"  {entry.dagster_event.step_key}: {message[0] if message else ''}")
    return out


def month_complete_on(month: str) -> str:
    """The day a monthly period is complete: its last trading session on the exchange calendar (a month ending
    on a weekend or a holiday, e.g. Good Friday 2024-03-29, is complete on the session before), or its last
    weekday where the calendar has no sessions for it yet."""
    first = pd.Timestamp(month)
    sessions = trading_calendar(SETTINGS.calendar).sessions(first.date(), (first + pd.offsets.MonthEnd(0)).date())
    return str(sessions[-1].date()) if len(sessions) else (first + pd.offsets.BMonthEnd(0)).strftime("%Y-%m-%d")


def research_periods(end: str, count: int) -> list[str]:
    """The ``count`` newest complete monthly periods (``month_complete_on`` on or before ``end``; none for 0)."""
    out: list[str] = []
    for key in reversed(research_partitions.get_partition_keys()):
        if len(out) == max(count, 0):
            break
        if month_complete_on(key) <= end:
            out.append(key)
    return out[::-1]


def too_few_periods(periods: int, chosen: list[str], end: str, coverage: tuple[dt.date, dt.date] | None,
                    end_given: bool) -> str:
    """Why fewer test months than ``--periods`` fit before ``end``, and what would give more: the message of the
    refusal when none fits, of a plan note otherwise."""
    first = research_partitions.start.strftime("%Y-%m-%d")  # the first month, ended or not
    first_done = month_complete_on(first)
    floor = first <= RS.first_period
    month = f"{first} (complete on {first_done})" if first_done > str(dt.date.today()) else first
    why = (f"the first test month is {month}, the preset's first_period" if floor else
           f"the first test month is {month}: a test month needs {RS.train_months} months of training features, "
           f"and features start {SETTINGS.price_lookback} weekdays after the partitions' start {PARTITIONS_START}")
    end_text = f"--end {end}" if end_given else f"{end} (the default end)"
    if chosen:
        return f"only {len(chosen)} of the {periods} test months asked for are complete by {end_text} " \
               f"({chosen[0]}..{chosen[-1]}): {why}"
    fixes = []
    if coverage and str(coverage[1]) < first_done:
        fixes.append(f"newer prices, through {first_done} at least (they end on {coverage[1]})")
    elif first_done <= str(dt.date.today()):
        fixes.append(f"--end {first_done} or later")
    if not floor:
        fixes.append("an earlier partitions_start in cnn_pipelines.yaml (CNN_PARTITIONS_START)"
                     + (", with prices from then on" if coverage else ""))
    fixes.append("--periods 0 to build the features only")
    return (f"--periods {periods} asks for test months, but none is complete by {end_text}: {why}. "
            f"Use {'; or '.join(fixes)}.")


def summary(root: Path) -> str:
    """What the run left in the lake, read back through the DuckDB catalog."""
    views = lake.catalog_views(root) or set()
    with lake.connect(root) as con:
        rows, first, last, tickers = con.execute(
            "select count(*), min(date), max(date), count(distinct ticker) from raw_prices").fetchone()
        panel_rows = con.execute("select count(*) from indicator_panel").fetchone()[0]
        panel_cols = len(con.execute("describe indicator_panel").fetchall()) - 2
        t = RS.target
        targets = con.execute(f"select count({t}), avg({t}_ok::int) from forward_returns").fetchone()
        # the same statistic as every asset reports (metrics.oos_ic), not a second definition in SQL
        if "oos_predictions" in views:
            preds = con.execute(f"select period, date, prediction, {t} from oos_predictions").df()
            ic, se, days = oos_ic(preds, t)
            oos_line = (f"oos_predictions (cnn_ta): {preds['period'].nunique()} walk-forward periods, {days} days "
                        f"with a realized {t}, mean daily rank IC {ic:+.4f} (s.e. {se:.4f})\n")
        else:
            oos_line = "oos_predictions (cnn_ta): none yet (no test month was trained; see --periods)\n"
    return (f"raw_prices: {rows:,} rows, {tickers} tickers, {first} .. {last}\n"
            f"indicator_panel: {panel_rows:,} rows x {panel_cols} features\n"
            f"forward_returns: {targets[0]:,} realized {t} labels, {targets[1] or 0:.2%} trainable\n"
            + oos_line + evaluation_summary(root) +
            f"lake: {lake.location(root)}  (duckdb {lake.catalog_path(root)} -c \"select * from indicator_panel limit 5\")")


def evaluation_summary(root: Path) -> str:
    """Tearsheet, backtest, audit and tomorrow's signals, from the lake and the reports folder."""
    lines = []
    reports = lake.artifact_dir(root, "reports")
    summary = reports / "factor_tearsheet" / "summary.json"
    objects.pull(summary)  # written on another machine of a cluster
    if summary.exists():
        s = lake.read_json(summary)
        by_label = ", ".join(f"{k} {v['ic_mean']:+.4f}" for k, v in s.get("label_ic", {}).items()
                             if k.endswith("_1d"))
        sample = s.get("sample", {})
        longest = list(s["ic"]["ic_mean"])[-1]  # a horizon no day has realized yet is left out of the tearsheet
        lines.append(f"tearsheet (alphalens, {sample.get('days', '?')} days where every horizon up to "
                     f"{longest} is realized, label {RS.target}): 1D IC {s['ic']['ic_mean']['1D']:+.4f} "
                     f"(t {s['ic']['t_stat']['1D']:.2f}), "
                     f"top-minus-bottom {s['spread']['top_minus_bottom_bps']['1D']:.1f} bps/day; IC by label: "
                     f"{by_label}; report {(reports / 'factor_tearsheet' / 'tearsheet.html').resolve()}")
    views = lake.catalog_views(root) or set()
    with lake.connect(root) as con:
        if "backtest" in views:
            mean, sd, days = con.execute("select avg(net), stddev(net), count(*) from backtest").fetchone()
            lines.append(f"backtest: net Sharpe {mean / sd * 252 ** 0.5:.2f} over {days} days "
                         f"(equity curve {(reports / 'backtest' / 'equity_curve.png').resolve()})")
        if "model_leaderboard" in views:
            from cnn_pipelines.trading.evaluation.assets import not_scored

            shown = ["rank", "model", "periods", "days", "rows", "coverage", "mean_ic", "ic_t", "monthly_ic",
                     "top_minus_bottom_bps", "mean_daily_turnover", "net_sharpe"]
            have = {r[0] for r in con.execute("describe model_leaderboard").fetchall()}  # older lakes: no rows
            board = con.execute(f"select {', '.join(c for c in shown if c in have)} from model_leaderboard "
                                "order by rank").df()
            lines.append("model leaderboard (same walk-forward periods and rows; mean daily rank IC vs "
                         f"{RS.target}, long-short top/bottom K after costs):\n"
                         + leaderboard_text(board)
                         + "".join(f"\n{m}: not scored, it predicted nothing in these periods (see its asset)"
                                   for m in not_scored(board))
                         + "\n(monthly IC: monthly models only; per-model tearsheets in "
                         + f"{(reports / 'model_leaderboard').resolve()}/<model>/tearsheet.html)")
        if "leakage_audit" in views:
            for market, ic, se, oracle in con.execute("select market, ic, se, oracle_ic from leakage_audit").fetchall():
                lines.append(f"leakage audit, {market}: IC {ic:+.4f} (s.e. {se:.4f}), oracle {oracle:+.4f}")
        if "daily_signals" in views:
            day, trade, longs, shorts = con.execute("""
                select max(date), max(trade_date), string_agg(ticker, ', ' order by ticker) filter (where side = 'long'),
                       string_agg(ticker, ', ' order by ticker) filter (where side = 'short')
                from daily_signals where date = (select max(date) from daily_signals)""").fetchone()
            lines.append(f"signals from {day} for {trade}: long {longs}; short {shorts}")
        if "vision_results" in views:
            for model, dataset, acc, n_test, n_train, default, target, metric in con.execute("""
                    select model, dataset_title, test_accuracy, n_test, n_train, default_config, target,
                           coalesce(metric, 'test accuracy') from vision_results order by model""").fetchall():
                settings = "full offline data" if default else "demo settings"
                goal = f", target {target:.0%} with the full settings" if target == target and target else ""
                lines.append(f"vision {model}: {metric} {acc:.2%} on {n_test:,} images of {dataset} "
                             f"({n_train:,} training images, {settings}{goal})")
        if "transfer_learning_curve" in views:
            # a lake written before the curve had seeds and a fine-tuned line has neither column nor rows
            columns = {r[0] for r in con.execute("describe transfer_learning_curve").fetchall()}
            seeds_sql = "count(distinct seed)" if "seed" in columns else "1"
            size_sql = "requested" if "requested" in columns else "labelled_images"

            def pct(v):
                return "n/a" if v is None else f"{v:.2%}"

            for chain, n, transfer, tuned, scratch, seeds, default in con.execute(f"""
                    select chain, max(labelled_images), avg(test_accuracy) filter (where method = 'transfer'),
                           avg(test_accuracy) filter (where method = 'fine_tuned'),
                           avg(test_accuracy) filter (where method = 'scratch'), {seeds_sql},
                           bool_and(default_config)
                    from transfer_learning_curve group by chain, {size_sql}
                    order by chain, {size_sql}""").fetchall():
                settings = "full offline data" if default else "demo settings: 2 label counts, 200+ steps each"
                lines.append(f"transfer {chain}: {n:,} labelled images: head on transferred features {pct(transfer)}, "
                             f"fine-tuned {pct(tuned)}, same network from scratch {pct(scratch)} "
                             f"({settings}, {seeds_text(seeds)})")
    return "".join(line + "\n" for line in lines)


# How the printed leaderboard rounds each column (issue 31's rules: IC 4 decimals, t and Sharpe 2, bps 1,
# fractions as %), and the heading that carries its unit.
_BOARD_FORMAT = {"coverage": ("coverage", lambda v: f"{v:.1%}"), "mean_ic": ("IC", lambda v: f"{v:+.4f}"),
                 "ic_t": ("t", lambda v: f"{v:.2f}"), "monthly_ic": ("monthly IC", lambda v: f"{v:+.4f}"),
                 "top_minus_bottom_bps": ("bps/day", lambda v: f"{v:.1f}"),
                 "mean_daily_turnover": ("turnover/day", lambda v: f"{v:.0%}"),
                 "net_sharpe": ("net Sharpe", lambda v: f"{v:.2f}")}


def raise_for_too_few_names(tickers: Sequence[str]) -> None:
    """Stop before any run when the price files cannot give a study (a cross-section of 3 names or more a day:
    daily rank IC, a long and a short side). A one-ticker folder built its features, then failed in research."""
    from cnn_pipelines.trading.features.universe import is_tradable

    names = [t for t, ok in zip(tickers, is_tradable(tickers, SETTINGS.non_tradables)) if ok]
    if len(names) < MIN_NAMES:
        raise PlanError(f"the price files hold {len(names)} tradable ticker(s) ({', '.join(names) or 'none'}): the "
                        f"study ranks names against each other every day (rank IC, a long and a short side), which "
                        f"needs {MIN_NAMES} or more. Add tickers, or use --periods 0 to build the features only")


def leaderboard_text(board: pd.DataFrame) -> str:
    """The leaderboard as the terminal shows it: each number rounded to what it means, units in the headings,
    ``n/a`` where a model has no such figure (monthly IC of a daily model)."""
    out = board.copy()
    for col, (title, fmt) in _BOARD_FORMAT.items():
        if col in out:
            out[col] = [fmt(v) if pd.notna(v) else "n/a" for v in out[col]]
    return out.rename(columns={c: t for c, (t, _) in _BOARD_FORMAT.items()}).to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=520, help="weekday partitions in the feature range")
    parser.add_argument("--start", default=None, help="first day of the feature range (overrides --days)")
    parser.add_argument("--end", default=None, help="last day (default: newest complete weekday, or the last "
                                                    "date the prices hold)")
    parser.add_argument("--periods", type=int, default=3, help="walk-forward test months to train and predict")
    parser.add_argument("--audit", action="store_true", help="also run the leakage audit (about 5 minutes on one core)")
    parser.add_argument("--no-vision", action="store_true", help="skip the vision graphs (image datasets and models)")
    parser.add_argument("--verbose", action="store_true", help="print every Dagster event of every run (by default "
                                                               "the terminal shows warnings and errors; the UI has all)")
    args = parser.parse_args(argv)
    from cnn_pipelines.trading.prices.resources import FilePriceSource, price_source_from_env

    source = price_source_from_env()
    coverage = source.coverage()
    if coverage is None and isinstance(source, FilePriceSource):  # nothing a run could store: say why now
        raise PlanError(source.why_no_bars())
    if isinstance(source, FilePriceSource) and args.periods > 0:
        raise_for_too_few_names(source.tickers())
    first = dt.date.fromisoformat(weekday_partitions.get_first_partition_key())
    clipped = bool(coverage and coverage[0] < first)
    prices_start = coverage[0] if coverage else None
    if clipped:  # nothing before the first partition can be stored
        coverage = (first, coverage[1])
    if args.periods < 0:
        parser.error(f"--periods must be 0 or more, not {args.periods}")
    try:
        the_plan = plan(args.end, args.days, args.start, args.periods, coverage=coverage)
    except PlanError as exc:
        if not clipped:
            raise
        raise PlanError(f"{exc}\n(The limit here is the partitions' start, {first}, not the prices, which start on "
                        f"{prices_start}: set partitions_start: {prices_start} in cnn_pipelines.yaml, or "
                        f"CNN_PARTITIONS_START={prices_start}, to use them.)") from None
    if clipped and the_plan.history and the_plan.history[0] == str(first):
        the_plan.notes.append(f"the partitions start on {first}; partitions_start in cnn_pipelines.yaml (or "
                              f"CNN_PARTITIONS_START=YYYY-MM-DD) widens them")
    the_plan.audit = args.audit
    the_plan.vision = not args.no_vision
    problems = check_inputs(the_plan, lake.default_root())
    if problems:
        raise PlanError("the plan's runs would not find their inputs (a bug in the planner; please report it):\n"
                        + "\n".join(problems[:10]))
    for note in the_plan.notes:
        print(f"plan: {note}", flush=True)
    for table, days in lake.migrate_day_files(lake.default_root()).items():
        print(f"lake: {table}: {days} day files folded into month files (the layout since issue 14)", flush=True)
    instance = prepare_instance()
    for run_id in fail_dead_runs(instance):
        print(f"run {run_id} was left STARTED by a process that is gone; marked failed", flush=True)
    for name, lo, hi in the_plan.runs():
        print(f"materializing {name}" + (f" for {lo}...{hi}" if lo else "") + " as one run", flush=True)
        t0 = time.time()
        # the study's warm-start chains begin at its first test month, whatever the lake holds before it
        tags = {CHAIN_START_TAG: the_plan.periods[0]} if name == "research_job" else None
        run = run_job(name, lo, hi, instance, "DEBUG" if args.verbose else "WARNING", tags)
        if run.status != dg.DagsterRunStatus.SUCCESS:
            for line in failure_lines(instance, run.run_id):
                print(line, file=sys.stderr)
            print(f"run {run.run_id} of {name} failed; see `make dev` -> Runs (or rerun with --verbose)",
                  file=sys.stderr)
            return 1
        print(f"run {run.run_id} succeeded in {time.time() - t0:.1f}s", flush=True)
    print(summary(lake.default_root()))
    if the_plan.periods:  # the one sentence that says how far the numbers above can be trusted
        from cnn_pipelines.trading.evaluation.study_assets import oracle_for
        from cnn_pipelines.trading.evaluation.study_view import study_view
        from cnn_pipelines.trading.prices.resources import price_source_from_env

        print(f"study: {study_view(lake.default_root(), RS.target, oracle_for(price_source_from_env())).verdict}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PlanError as exc:
        print(f"cannot plan the run: {exc}", file=sys.stderr)
        sys.exit(2)
