"""`make run`: materialize the main job over the demo range as one Dagster run, then print a summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from cnn_pipelines import lake
from cnn_pipelines.definitions import defs
from cnn_pipelines.partitions import weekday_partitions

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


def run_main_job(start: str, end: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Execute ``trading_job`` for the partition range [start, end] as ONE run recorded in ``instance``."""
    job = defs.resolve_job_def("trading_job")
    return job.execute_in_process(instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})


def summary(root: Path) -> str:
    """What the run left in the lake, read back through the DuckDB catalog."""
    con = duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True)
    try:
        rows, first, last, tickers = con.execute(
            "select count(*), min(date), max(date), count(distinct ticker) from raw_prices"
        ).fetchone()
    finally:
        con.close()
    return (f"raw_prices: {rows:,} rows, {tickers} tickers, {first} .. {last}\n"
            f"lake: {root.resolve()}  (duckdb {root / lake.CATALOG_FILE} -c \"select * from raw_prices limit 5\")")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=520, help="weekday partitions in the demo range")
    parser.add_argument("--end", default=None, help="last partition key (default: newest complete weekday)")
    args = parser.parse_args(argv)
    start, end = demo_range(args.days, args.end)
    print(f"materializing trading_job for {start}...{end} as one run", flush=True)
    t0 = time.time()
    result = run_main_job(start, end, dg.DagsterInstance.get())
    if not result.success:
        print("run failed", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded in {time.time() - t0:.1f}s")
    print(summary(lake.default_root()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
