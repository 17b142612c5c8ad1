"""Scale benchmark: the indicator panel of a large universe within a bounded memory, and how long a ten-year
walk-forward takes on 1, 4 and 16 workers.

Panel (each measurement in a fresh process, peak RSS from ``getrusage``): a synthetic market of ``--tickers``
names over ``--days`` output days plus the ``full`` preset's look-back is written to a temporary lake as
``raw_prices``; then the ``indicator_panel`` asset's work is done as the asset does it: read the look-back window
from the lake, compute the 300 features shard by shard (``--shard`` names at a time) and commit them to the lake
month by month through a spool. The reference is today's whole-universe computation (one shard of every name,
the table held in memory and written at once), measured in the same run at two smaller universes and
extrapolated linearly to ``--tickers``; at the larger of the two, the sharded and whole lakes are compared value
by value (``identical_sharded``).

Cluster (``--cluster``): the project's local cluster (PostgreSQL, Redis, moto's S3 server, two Celery workers,
the daemon; ``cnn_pipelines.cluster.servers``) is started in a temporary folder, and the same small study runs
on the single machine (in-process, local lake) and on the cluster (its last 6 weekday partitions and 2 research
months through the queue, lake on S3); ``identical`` says whether every table and model agrees to 1e-6
(``cnn_pipelines.cluster.compare``), ``cluster_workers`` how many workers took runs.

Walk-forward projection: one full-size research month (the ``full`` preset: 500 names, 60-month windows) is
fitted and trained for one epoch here (or the JSON line of ``benchmarks/full_month.py`` is read with
``--month-json``); a month costs its fitting plus its epochs: all ``--epochs`` from scratch, ``--steady-epochs``
when warm-started (4.0, measured by ``benchmarks/walkforward.py``). Warm starts make retrain months a chain: a
month waits for the model it starts from. With C chains (``CNN_WARM_CHAINS``) month m starts from month m - C,
so C chains run side by side; the wall time on W workers is ceil(C / W) chains one after another.

    .venv/bin/python benchmarks/scale.py --cluster            # about 20 minutes on 2 cores

Last line: JSON with tickers, days, peak_rss_gb (sharded), reference_peak_rss_gb (extrapolated), ratio,
identical_sharded, identical (cluster vs single machine; null without --cluster), cluster_workers, workers and
the projected hours of a 120-month walk-forward by chains and workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from walkforward import cpu_name  # noqa: E402


def settings(tickers: int, shard: int):
    from cnn_pipelines.trading.settings import PRESETS

    return dataclasses.replace(PRESETS["full"], universe_size=tickers, shard_tickers=shard)


def day_keys(days: int, lookback: int) -> tuple[list[str], list[str]]:
    """(every weekday partition of prices, the output days): ``days`` output weekdays after ``lookback``."""
    keys = pd.bdate_range("2012-01-02", periods=lookback + days).strftime("%Y-%m-%d").tolist()
    return keys, keys[lookback:]


def _make_lake(root: str, tickers: int, days: int) -> None:
    """raw_prices of a synthetic market, written a year at a time (so this process stays small too)."""
    from cnn_pipelines.storage import lake
    from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket

    keys, _ = day_keys(days, settings(tickers, 1).price_lookback)
    market = SyntheticMarket(MarketConfig(seed=3, n_tickers=tickers, inception=keys[0], listing_spread_days=2 * days))
    for year in sorted({k[:4] for k in keys}):
        part = [k for k in keys if k.startswith(year)]
        lake.write_partitions(Path(root), "raw_prices", market.prices(part[0], part[-1]), part)


def _panel(root: str, out: str, tickers: int, days: int, shard: int, whole: bool, workers: int, queue) -> None:
    """The indicator_panel asset's work in this process: sharded through a spool (shards in ``workers`` forked
    processes, 0 = one per core), or (``whole``) today's way."""
    from cnn_pipelines.storage import lake
    from cnn_pipelines.trading.features.panel import indicator_panel_table
    from cnn_pipelines.trading.features.sharding import spool_panel
    from cnn_pipelines.trading.prices.adjustments import adjust_as_of

    s = dataclasses.replace(settings(tickers, tickers if whole else shard), panel_workers=1 if whole else workers)
    keys, out_keys = day_keys(days, s.price_lookback)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    prices = adjust_as_of(lake.read_partitions(Path(root), "raw_prices", keys))
    if whole:
        panel = indicator_panel_table(prices, s, out_keys[0], out_keys[-1])
        rows = len(panel)
        lake.write_partitions(Path(out), "indicator_panel", panel, out_keys)
    else:
        spool, _, used = spool_panel(prices, s, out_keys[0], out_keys[-1])
        rows = spool.rows
        lake.write_spooled(Path(out), "indicator_panel", spool, out_keys)
        spool.close()
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    queue.put({"seconds": time.perf_counter() - t0, "rows": rows, "input_rows": len(prices),
               "processes": 1 if whole else used, "peak_rss_gb": peak / 1e6, "start_rss_gb": base / 1e6})


def in_child(target, *args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    if p.exitcode:
        raise SystemExit(f"{target.__name__} failed (exit code {p.exitcode})")
    return out


def _make_lake_child(root: str, tickers: int, days: int, queue) -> None:
    _make_lake(root, tickers, days)
    queue.put(None)


def panel_run(tmp: Path, tickers: int, days: int, shard: int, whole: bool, workers: int = 1) -> dict:
    src, out = tmp / f"prices{tickers}", tmp / f"{'whole' if whole else 'sharded'}{tickers}"
    if not src.exists():
        t0 = time.perf_counter()
        in_child(_make_lake_child, str(src), tickers, days)
        print(f"  {tickers} names: prices written in {time.perf_counter() - t0:.0f}s", flush=True)
    res = in_child(_panel, str(src), str(out), tickers, days, shard, whole, workers)
    res["lake"] = str(out)
    print(f"  {tickers} names, {'whole (today)' if whole else f'shards of {shard}'}: {res['seconds']:.0f}s, "
          f"{res['rows']:,} rows, peak RSS {res['peak_rss_gb']:.2f} GB (the largest of {res['processes']} process(es))",
          flush=True)
    return res


def same_lake(a: str, b: str) -> bool:
    """Every month file of two indicator_panel lakes holds the same rows, values and days."""
    import pyarrow.parquet as pq

    fa = sorted(Path(a, "indicator_panel").glob("month=*/data.parquet"))
    fb = sorted(Path(b, "indicator_panel").glob("month=*/data.parquet"))
    if [f.parent.name for f in fa] != [f.parent.name for f in fb]:
        return False
    return all(pq.read_table(x).equals(pq.read_table(y)) for x, y in zip(fa, fb))


def month_costs(args) -> dict:
    """Seconds of fitting and of one epoch of one full-size research month (measured here, or read)."""
    if args.month_json:
        line = [ln for ln in Path(args.month_json).read_text().splitlines() if ln.startswith("{")][-1]
        m = json.loads(line)
        return {"fit_seconds": m["fit_seconds"], "epoch_seconds": m["ours_seconds_per_epoch"],
                "source": args.month_json, "training_images": m.get("training_images")}
    import warnings

    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    from cnn_pipelines.trading.prices.calendar import trading_calendar
    from cnn_pipelines.trading.research.cnn import train_period
    from cnn_pipelines.trading.research.periods import fit_fold
    from cnn_pipelines.trading.research.walkforward import fold_for
    from cnn_pipelines.trading.settings import RESEARCH_PRESETS
    from walkforward import market

    rs = RESEARCH_PRESETS["full"]
    rs = dataclasses.replace(rs, train_months=args.month_train_months,
                             val_months=min(rs.val_months, args.month_train_months // 3))
    fs, panel, targets = market(args.month_names, "2019-01-01", 1, rs.train_months, 0.15, seed=12)
    t0 = time.perf_counter()
    fitted = fit_fold(panel, targets, fold_for("2019-01-01", rs, trading_calendar(fs.calendar)), fs, rs, 1, "p")
    fit_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        res = train_period(*fitted.arrays, dataclasses.replace(rs, epochs=2), Path(tmp) / "m", "fp")
    epoch_s = float(res.epochs["seconds"].iloc[-1])  # the second epoch: the first also builds the graph
    print(f"  one research month ({args.month_names} names, {rs.train_months}-month window, "
          f"{len(fitted.arrays[0]):,} training images): fitting {fit_s:.0f}s, an epoch {epoch_s:.0f}s", flush=True)
    return {"fit_seconds": round(fit_s, 1), "epoch_seconds": round(epoch_s, 1), "source": "measured in this run",
            "training_images": len(fitted.arrays[0])}


def projection(costs: dict, months: int, retrain_every: int, epochs: int, steady: float,
               chains: list[int], workers: list[int]) -> dict:
    """Hours of a ``months``-month walk-forward by warm-start chains and workers (retrain months only: the
    months between reuse a model and cost a prediction)."""
    first = costs["fit_seconds"] + epochs * costs["epoch_seconds"]
    warm = costs["fit_seconds"] + steady * costs["epoch_seconds"]
    retrains = math.ceil(months / retrain_every)
    out = {}
    for c in chains:
        length = math.ceil(retrains / c)  # the longest chain
        chain_s = first + (length - 1) * warm
        out[f"chains_{c}"] = {str(w): round(math.ceil(c / w) * chain_s / 3600, 2) for w in workers}
    out["from_scratch"] = {str(w): round(math.ceil(retrains / w) * first / 3600, 2) for w in workers}
    return out


def panel_part(tmp: Path, args, refs: list[int]) -> dict:
    print(f"panel: {args.tickers} names x {args.days} days, shards of {args.shard}", flush=True)
    big = panel_run(tmp, args.tickers, args.days, args.shard, whole=False, workers=args.panel_workers)
    ref = {n: panel_run(tmp, n, args.days, args.shard, whole=True) for n in refs}
    small = panel_run(tmp, refs[-1], args.days, args.shard, whole=False, workers=args.panel_workers)
    identical = same_lake(small["lake"], ref[refs[-1]]["lake"])
    slope = (ref[refs[1]]["peak_rss_gb"] - ref[refs[0]]["peak_rss_gb"]) / (refs[1] - refs[0])
    ref_big = ref[refs[1]]["peak_rss_gb"] + slope * (args.tickers - refs[1])
    sharded_slope = (big["peak_rss_gb"] - small["peak_rss_gb"]) / (args.tickers - refs[-1])
    print(f"  today's way needs {slope * 1000:.1f} MB per name: {ref_big:.1f} GB at {args.tickers} names "
          f"(extrapolated); sharded {big['peak_rss_gb']:.2f} GB measured ({sharded_slope * 1000:.2f} MB per name "
          f"beyond {refs[-1]}: the price window); sharded == whole at {refs[-1]} names: {identical}", flush=True)
    return {"shard": args.shard, "panel_processes": big["processes"], "panel_rows": big["rows"],
            "panel_seconds": round(big["seconds"], 1),
            "peak_rss_gb": round(big["peak_rss_gb"], 2), "reference_peak_rss_gb": round(ref_big, 1),
            "reference_measured": {str(n): round(r["peak_rss_gb"], 2) for n, r in ref.items()},
            "ratio": round(ref_big / big["peak_rss_gb"], 1), "mb_per_name_sharded": round(sharded_slope * 1000, 2),
            "mb_per_name_whole": round(slope * 1000, 2), "identical_sharded": identical,
            "identical_scope": f"sharded vs whole panel, {refs[-1]} names, every stored value"}


def cluster_part(base: Path) -> dict:
    """The study on the single machine and on a local cluster of two workers with its lake on S3."""
    from cnn_pipelines.cluster import servers
    from cnn_pipelines.cluster.compare import STUDY_ENV, single_vs_cluster

    repo = Path(__file__).resolve().parents[1]
    base.mkdir(parents=True)
    for folder in (base, base.parent):
        folder.chmod(0o755)  # PostgreSQL runs as its own user when we are root: it must reach its folder
    saved = dict(os.environ)
    os.environ.pop("CNN_LAKE_ROOT", None)
    os.environ.update({**STUDY_ENV,
                       "CNN_LAKE_CATALOG_DIR": str(base / "catalogs")})
    try:
        ports = {k: servers.free_port() for k in ("postgres", "redis", "s3", "ui")}
        env = {**os.environ, **servers.up(base, repo, ports)}
        result = single_vs_cluster(env, base / "single", repo, f"http://127.0.0.1:{ports['ui']}")
    finally:
        servers.down(base)
        os.environ.clear()
        os.environ.update(saved)
    for line in result.differences:
        print(f"  cluster differs: {line}", flush=True)
    workers = len(set().union(*result.pids.values()))
    print(f"cluster vs single machine: identical {result.identical}; {len(result.runs)} queued runs on {workers} "
          f"workers in {result.cluster_s:.0f} s (the single machine's whole study: {result.single_s:.0f} s)", flush=True)
    return {"identical": result.identical, "cluster_workers": workers, "cluster_runs": len(result.runs),
            "cluster_differences": result.differences}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=3000)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--shard", type=int, default=200)
    ap.add_argument("--panel-workers", type=int, default=0, help="processes computing shards (0: one per core)")
    ap.add_argument("--reference-tickers", default="150,300", help="two universes for today's whole-panel way")
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--retrain-every", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=30, help="a from-scratch month (the full preset)")
    ap.add_argument("--steady-epochs", type=float, default=4.0, help="a warm-started month (walkforward.py)")
    ap.add_argument("--workers", default="1,4,16")
    ap.add_argument("--chains", default="1,4,16")
    ap.add_argument("--month-json", default=None, help="the JSON line of benchmarks/full_month.py instead of measuring")
    ap.add_argument("--month-names", type=int, default=500)
    ap.add_argument("--month-train-months", type=int, default=60)
    ap.add_argument("--skip-month", action="store_true", help="panel only")
    ap.add_argument("--skip-panel", action="store_true", help="walk-forward projection only")
    ap.add_argument("--cluster", action="store_true", help="also compare a local cluster's lake with the single "
                    "machine's (needs PostgreSQL, Redis and the [cluster] extras)")
    args = ap.parse_args()
    refs = [int(x) for x in args.reference_tickers.split(",")]
    workers = [int(x) for x in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="cnn-scale-"))
    panel: dict = {}
    cluster: dict = {"identical": None, "cluster_workers": None}
    try:
        if args.cluster:
            cluster = cluster_part(tmp / "cluster")
        if not args.skip_panel:
            panel = panel_part(tmp, args, refs)
        proj, costs = None, None
        if not args.skip_month:
            costs = month_costs(args)
            proj = projection(costs, args.months, args.retrain_every, args.epochs, args.steady_epochs,
                              [int(x) for x in args.chains.split(",")], workers)
            for k, v in proj.items():
                print(f"  {args.months}-month walk-forward, {k.replace('_', ' ')}: " +
                      ", ".join(f"{h:.1f} h on {w}" for w, h in v.items()), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "cpu": f"{cpu_name()}, {os.cpu_count()} cores", "tickers": args.tickers, "days": args.days, **panel, **cluster,
        "workers": workers, "month_costs": costs, "months": args.months, "retrain_every": args.retrain_every,
        "projected_hours": proj,
    }))


if __name__ == "__main__":
    main()
