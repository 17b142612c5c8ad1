"""The indicator panel computed shard by shard into a spool, in parallel worker processes where there are cores.

Every per-ticker feature of a shard depends on its own bars and the shared factor returns only
(``panel.shard_matrix``), so shards are independent: with ``workers`` > 1 they are computed in forked processes
that share the cross-sectional part (``PanelPlan``, computed once here) without copying it, each writing its
month slices into the spool's folder and returning only their bookkeeping and its summary. Peak memory is one
shard per process; the spool and the summary are merged in shard order, so the result does not depend on the
number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from cnn_pipelines.storage.spool import SpooledTable
from cnn_pipelines.trading.features.panel import PanelPlan, empty_panel, feature_columns, plan_panel, shard_frame
from cnn_pipelines.trading.features.reports import PanelSummary
from cnn_pipelines.trading.settings import FeatureSettings

_FORKED: tuple[PanelPlan, FeatureSettings, str] | None = None  # what forked workers inherit (not pickled)


def panel_workers(s: FeatureSettings, shards: int) -> int:
    """Processes for ``shards`` shards: ``s.panel_workers`` (0: one per core this process may use), never more
    than the shards. Each process peaks at about one shard's memory plus the shared price window."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = s.panel_workers or cores
    return max(1, min(wanted, shards))


def spool_panel(prices: pd.DataFrame, s: FeatureSettings, start, end) -> tuple[SpooledTable, PanelSummary, int]:
    """The panel of ``indicator_panel_table`` staged in a spool, with its summary and the processes used."""
    spool, summary = SpooledTable(empty_panel(feature_columns(s))), PanelSummary()
    if prices.empty:
        return spool, summary, 1
    plan = plan_panel(prices, s, start, end)
    workers = panel_workers(s, len(plan.shards))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        for columns in plan.shards:
            shard = shard_frame(plan, columns, s)
            spool.add(shard)
            summary.add(shard)
        return spool, summary, 1
    global _FORKED
    _FORKED = (plan, s, str(spool.dir))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        for state, part in pool.map(_spool_shard, range(len(plan.shards))):
            spool.absorb(state)
            summary.merge(part)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # shards not started are dropped, not computed first
        spool.close()
        raise
    finally:
        pool.shutdown(wait=True)
        _FORKED = None
    return spool, summary, workers


def _spool_shard(i: int) -> tuple[dict, PanelSummary]:
    """In a forked worker: shard ``i`` into a spool of its own inside the parent's folder, kept for the parent."""
    plan, s, folder = _FORKED
    shard = shard_frame(plan, plan.shards[i], s)
    piece, summary = SpooledTable(empty_panel(feature_columns(s)), directory=folder), PanelSummary()
    piece.add(shard)
    summary.add(shard)
    return piece.detach(), summary
