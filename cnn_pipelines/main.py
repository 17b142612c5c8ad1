"""`make run`: materialize the main job over the demo range as one Dagster run, then print a summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from cnn_pipelines import lake
from cnn_pipelines.definitions import defs
from cnn_pipelines.assets.research import research_partitions
from cnn_pipelines.partitions import weekday_partitions
from cnn_pipelines.settings import current_settings

SETTINGS = current_settings()

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def demo_range(days: int, end: str | None = None) -> tuple[str, str]:
    """The trailing ``days`` weekday partition keys ending at ``end`` (default: the newest complete partition)."""
    keys = weekday_partitions.get_partition_keys()
    if end is not None:
        if end not in keys:
            raise SystemExit(f"--end {end} is not a weekday partition key between {keys[0]} and {keys[-1]}")
        keys = keys[: keys.index(end) + 1]
    keys = keys[-days:]
    return keys[0], keys[-1]


def history_range(start: str) -> tuple[str, str] | None:
    """Partitions of raw_prices that the first demo partitions look back on (features need warm-up)."""
    keys = weekday_partitions.get_partition_keys()
    i = keys.index(start)
    if i == 0:
        return None
    return keys[max(0, i - SETTINGS.price_lookback)], keys[i - 1]


def run_job(name: str, start: str, end: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Execute job ``name`` as ONE run recorded in ``instance``: unpartitioned (no start), one partition
    (start == end) or the partition range [start, end]."""
    job = defs.resolve_job_def(name)
    if not start:
        return job.execute_in_process(instance=instance, raise_on_error=False)
    if start == end:
        return job.execute_in_process(instance=instance, partition_key=start, raise_on_error=False)
    return job.execute_in_process(instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
                                  raise_on_error=False)


def research_periods(end: str, count: int) -> list[str]:
    """The ``count`` newest complete monthly periods whose test month ends on or before ``end``."""
    keys = [k for k in research_partitions.get_partition_keys()
            if (pd.Timestamp(k) + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d") <= end]
    return keys[-count:]


def summary(root: Path) -> str:
    """What the run left in the lake, read back through the DuckDB catalog."""
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        rows, first, last, tickers = con.execute(
            "select count(*), min(date), max(date), count(distinct ticker) from raw_prices").fetchone()
        panel_rows = con.execute("select count(*) from indicator_panel").fetchone()[0]
        panel_cols = len(con.execute("describe indicator_panel").fetchall()) - 2
        targets = con.execute("select count(fwd_1d), avg(fwd_1d_ok::int) from forward_returns").fetchone()
        oos = con.execute("""
            with daily as (select period, date, corr(rp, ry) as ic from (
                select period, date, rank() over (partition by date order by prediction) as rp,
                       rank() over (partition by date order by fwd_1d) as ry from oos_predictions where fwd_1d_ok)
                group by period, date)
            select count(distinct period), count(*), avg(ic), stddev(ic) / sqrt(count(*)) from daily""").fetchone()
    return (f"raw_prices: {rows:,} rows, {tickers} tickers, {first} .. {last}\n"
            f"indicator_panel: {panel_rows:,} rows x {panel_cols} features\n"
            f"forward_returns: {targets[0]:,} realized 1-day targets, {targets[1]:.2%} usable\n"
            f"oos_predictions: {oos[0]} walk-forward periods, {oos[1]} days, mean daily rank IC {oos[2]:+.4f} "
            f"(s.e. {oos[3]:.4f})\n"
            + evaluation_summary(root) +
            f"lake: {root.resolve()}  (duckdb {root / lake.CATALOG_FILE} -c \"select * from indicator_panel limit 5\")")


def evaluation_summary(root: Path) -> str:
    """Tearsheet, backtest, audit and tomorrow's signals, from the lake and the reports folder."""
    lines = []
    summary = root / "reports" / "factor_tearsheet" / "summary.json"
    if summary.exists():
        s = lake.read_json(summary)
        lines.append(f"tearsheet: 1D IC {s['ic']['ic_mean']['1D']:+.4f} (t {s['ic']['t_stat']['1D']:.2f}), "
                     f"top-minus-bottom {s['spread']['top_minus_bottom_bps']['1D']:.1f} bps/day; "
                     f"report {(root / 'reports' / 'factor_tearsheet' / 'tearsheet.html').resolve()}")
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        if "backtest" in views:
            mean, sd, days = con.execute("select avg(net), stddev(net), count(*) from backtest").fetchone()
            lines.append(f"backtest: net Sharpe {mean / sd * 252 ** 0.5:.2f} over {days} days "
                         f"(equity curve {(root / 'reports' / 'backtest' / 'equity_curve.png').resolve()})")
        if "leakage_audit" in views:
            for market, ic, se, oracle in con.execute("select market, ic, se, oracle_ic from leakage_audit").fetchall():
                lines.append(f"leakage audit, {market}: IC {ic:+.4f} (s.e. {se:.4f}), oracle {oracle:+.4f}")
        if "daily_signals" in views:
            day, trade, longs, shorts = con.execute("""
                select max(date), max(trade_date), string_agg(ticker, ' ') filter (where side = 'long'),
                       string_agg(ticker, ' ') filter (where side = 'short')
                from daily_signals where date = (select max(date) from daily_signals)""").fetchone()
            lines.append(f"signals from {day} for {trade}: long {longs}; short {shorts}")
    return "".join(line + "\n" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=520, help="weekday partitions in the demo range")
    parser.add_argument("--periods", type=int, default=3, help="walk-forward test months to train and predict")
    parser.add_argument("--end", default=None, help="last partition key (default: newest complete weekday)")
    args = parser.parse_args(argv)
    start, end = demo_range(args.days, args.end)
    instance = dg.DagsterInstance.get()
    runs = []
    history = history_range(start)
    if history:
        runs.append(("price_history_job", *history))
    runs.append(("trading_job", start, end))
    runs += [("research_job", p, p) for p in research_periods(end, args.periods)]
    runs += [("evaluation_job", "", ""), ("nightly_job", end, end)]
    for name, lo, hi in runs:
        print(f"materializing {name}" + (f" for {lo}...{hi}" if lo else "") + " as one run", flush=True)
        t0 = time.time()
        result = run_job(name, lo, hi, instance)
        if not result.success:
            print(f"run {result.run_id} of {name} failed; see `make dev` -> Runs", file=sys.stderr)
            return 1
        print(f"run {result.run_id} succeeded in {time.time() - t0:.1f}s", flush=True)
    print(summary(lake.default_root()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
