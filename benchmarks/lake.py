"""Lake layout benchmark: an indicator panel of the `full` preset's size (500 names x 10 years of weekdays x 300
float32 features) written through the lake (one file per month) against the same rows in ONE Parquet file,
and, as the layout before this one, one file per day. Same data, same run, same machine.

    .venv/bin/python benchmarks/lake.py                       # full size (~2.5 minutes, ~3 GB of disk in /tmp)
    .venv/bin/python benchmarks/lake.py --names 50 --years 2  # quick

Queries through DuckDB (views over read_parquet, as the catalog makes them), best of 3 warm runs each:
a whole-table aggregate and a one-month date filter. Goal: each at most 2x the single file's time, and disk at
most 1.5x the single file's. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cnn_pipelines.storage import lake


def month_frames(names: int, years: int, columns: int, seed: int = 0):
    """The panel one month at a time (date, ticker, f000..): random float32 features, a few NaNs."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-01", periods=years * 261)
    tickers = np.array([f"T{i:04d}" for i in range(names)])
    for _, group in pd.Series(days, index=days).groupby(days.to_period("M")):
        month_days = pd.DatetimeIndex(group.index)
        n = len(month_days) * names
        values = rng.standard_normal((n, columns), dtype=np.float32)
        values[rng.random((n, columns)) < 0.01] = np.nan
        frame = pd.DataFrame(values, columns=[f"f{j:03d}" for j in range(columns)])
        frame.insert(0, "ticker", np.tile(tickers, len(month_days)))
        frame.insert(0, "date", np.repeat(month_days.date, names))
        yield [d.strftime("%Y-%m-%d") for d in month_days], frame


def disk_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*.parquet"))


def best_of(con: duckdb.DuckDBPyConnection, sql: str, repeats: int = 3) -> tuple[float, tuple]:
    con.execute(sql).fetchall()  # warm the OS cache and DuckDB's metadata
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = con.execute(sql).fetchall()[0]
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--columns", type=int, default=300)
    ap.add_argument("--no-daily", action="store_true", help="skip the one-file-per-day layout (the old one)")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one, removed after)")
    args = ap.parse_args()
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="lake-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    ours, single, daily = scratch / "lake", scratch / "single.parquet", scratch / "daily"
    try:
        t_ours = t_single = t_daily = 0.0
        writer, rows, month_of_filter = None, 0, None
        for i, (keys, frame) in enumerate(month_frames(args.names, args.years, args.columns)):
            rows += len(frame)
            if i == (args.years * 12) // 2:  # filter on a month in the middle of the history
                month_of_filter = keys[0][:7]
            t0 = time.perf_counter()
            lake.write_partitions(ours, "indicator_panel", frame, keys)
            t_ours += time.perf_counter() - t0
            t0 = time.perf_counter()
            table = lake.to_arrow(frame)
            writer = writer or pq.ParquetWriter(single, table.schema, compression="zstd")
            writer.write_table(table)
            t_single += time.perf_counter() - t0
            if not args.no_daily:
                t0 = time.perf_counter()
                days = frame["date"].astype(str).to_numpy()
                for k in keys:
                    path = daily / "indicator_panel" / f"date={k}" / "data.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    pq.write_table(table.filter(pa.array(days == k)), path, compression="zstd")
                t_daily += time.perf_counter() - t0
        writer.close()
        lake.refresh_catalog(ours, ["indicator_panel"])
        month = month_of_filter
        lo, hi = f"{month}-01", str((pd.Timestamp(f"{month}-01") + pd.offsets.MonthEnd(0)).date())
        queries = {
            "whole_table": "select count(*), avg(f000), max(f299 ) from {t}".replace("f299 ", f"f{args.columns - 1:03d}"),
            "one_month": f"select count(*), avg(f001) from {{t}} where date between '{lo}' and '{hi}'",
        }
        sources = {"single_file": f"read_parquet('{single}')",
                   "ours": f"read_parquet('{ours}/indicator_panel/month=*/data.parquet', hive_partitioning = false, union_by_name = true)"}
        if not args.no_daily:
            sources["one_file_per_day"] = f"read_parquet('{daily}/indicator_panel/date=*/data.parquet')"
        results: dict[str, dict[str, float]] = {}
        with duckdb.connect() as con:
            for name, src in sources.items():
                con.execute(f"create or replace view {name} as select * from {src}")
                for q, sql in queries.items():
                    seconds, out = best_of(con, sql.format(t=name))
                    results.setdefault(q, {})[name] = seconds
                    results.setdefault(f"{q}_result", {})[name] = out[0]
        for q in queries:  # same answer from every layout
            assert len(set(results[f"{q}_result"].values())) == 1, results[f"{q}_result"]
        disk = {"single_file": disk_bytes(single), "ours": disk_bytes(ours / "indicator_panel")}
        if not args.no_daily:
            disk["one_file_per_day"] = disk_bytes(daily)
        files = {"single_file": 1, "ours": len(list((ours / "indicator_panel").glob("month=*/data.parquet")))}
        if not args.no_daily:
            files["one_file_per_day"] = len(list(daily.rglob("*.parquet")))
        print(f"panel: {args.names} names x {args.years} years x {args.columns} float32 features = {rows:,} rows; "
              f"one-month filter on {month}")
        print(f"{'layout':<18}{'files':>7}{'disk MB':>10}{'write s':>9}{'whole-table s':>15}{'one-month s':>13}")
        writes = {"single_file": t_single, "ours": t_ours, "one_file_per_day": t_daily}
        for name in sources:
            print(f"{name:<18}{files[name]:>7,}{disk[name] / 1e6:>10.1f}{writes[name]:>9.1f}"
                  f"{results['whole_table'][name]:>15.3f}{results['one_month'][name]:>13.3f}")
        summary = {
            "rows": rows, "files": files["ours"],
            "whole_table_ratio": results["whole_table"]["ours"] / results["whole_table"]["single_file"],
            "one_month_ratio": results["one_month"]["ours"] / results["one_month"]["single_file"],
            "disk_ratio": disk["ours"] / disk["single_file"],
        }
        if not args.no_daily:
            summary.update({
                "daily_whole_table_ratio": results["whole_table"]["one_file_per_day"] / results["whole_table"]["single_file"],
                "daily_one_month_ratio": results["one_month"]["one_file_per_day"] / results["one_month"]["single_file"],
                "daily_disk_ratio": disk["one_file_per_day"] / disk["single_file"]})
        summary["goal_met"] = bool(summary["whole_table_ratio"] <= 2 and summary["one_month_ratio"] <= 2
                                   and summary["disk_ratio"] <= 1.5)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}))
    finally:
        if not args.dir:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
