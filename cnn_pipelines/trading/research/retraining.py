"""When a walk-forward period trains and what it starts from: the retrain cadence (every k months, the months
between use the last model fitted) and warm starts from the previous retrain's best checkpoint.

Point in time: a month's model is always one fitted at or before that month's own retrain period, whose cutoff
is no later than the month's; a warm start only ever reads the checkpoint of an earlier retrain period.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.storage.checkpoints import epoch_path
from cnn_pipelines.trading.research.layout import ImageLayout


def months_from(first: str, period: str) -> int:
    """Whole months from test period ``first`` to ``period`` (both first days of a month)."""
    a, b = pd.Period(pd.Timestamp(first), "M"), pd.Period(pd.Timestamp(period), "M")
    return (b - a).n


def retrain_period(period: str, first: str, every: int) -> str:
    """The retrain period whose model predicts ``period``: the newest month at or before it that is a whole
    number of ``every``-month steps after ``first``."""
    n = months_from(first, period)
    if n < 0:
        raise ValueError(f"period {period} is before the first research period {first}")
    start = pd.Period(pd.Timestamp(period), "M") - (n % every)
    return str(start.start_time.date())


def previous_retrain(period: str, first: str, every: int) -> str | None:
    """The retrain period before the one that predicts ``period`` (None for the first)."""
    anchor = retrain_period(period, first, every)
    if months_from(first, anchor) < every:
        return None
    return str((pd.Period(pd.Timestamp(anchor), "M") - every).start_time.date())


def layout_signature(layout: ImageLayout) -> dict:
    """What makes two image layouts the same grid for a network: families (columns) and look-backs (rows), in
    order. The scaler may differ (it is refitted on each window)."""
    return {"families": list(layout.families), "period_index": [int(i) for i in layout.period_index]}


def warm_start_source(models_root: Path, previous: str | None, period: str,
                      layout: ImageLayout) -> tuple[Path | None, str]:
    """(checkpoint to start ``period``'s training from, why): the last finished epoch of the ``previous`` retrain
    when its layout is the same grid; else (None, the reason training starts from scratch). Not its best
    validation-IC epoch: the previous validation window overlaps this period's (42 % of the sessions in demo,
    91 % in full), so starting from the epoch chosen on it would re-use a holdout and flatter ``best_val_ic``."""
    if previous is None:
        return None, "from scratch: the first retrain period, nothing earlier to start from"
    if pd.Timestamp(previous) >= pd.Timestamp(period):
        raise ValueError(f"warm start of {period} from {previous}: only an earlier period's model may be used")
    state_path = Path(models_root) / previous / "state.json"
    if not state_path.exists():
        return None, (f"from scratch: no model trained for {previous}, the previous retrain period, in this lake "
                      f"(materializing {previous} first lets the next run start from it)")
    state = json.loads(state_path.read_text())
    epochs = [e for e in state.get("epochs", []) if np.isfinite(e.get("val_ic", np.nan))]
    if not epochs:
        return None, f"from scratch: the model for {previous} has no finished epoch"
    mine, theirs = layout_signature(layout), state.get("layout")
    if theirs != mine:
        if theirs is None:
            why = "its layout is not recorded"
        elif set(theirs["families"]) != set(mine["families"]):
            out, new = set(theirs["families"]) - set(mine["families"]), set(mine["families"]) - set(theirs["families"])
            why = f"selected families changed (out: {', '.join(sorted(out))}; in: {', '.join(sorted(new))})"
        elif theirs["families"] != mine["families"]:
            why = f"column order changed ({', '.join(theirs['families'])} -> {', '.join(mine['families'])})"
        else:
            why = f"look-back order changed ({theirs['period_index']} -> {mine['period_index']})"
        return None, f"from scratch: image layout differs from {previous}'s: {why}"
    last = max(epochs, key=lambda e: e["epoch"])
    path = epoch_path(Path(models_root) / previous, last["epoch"])
    if not path.exists():
        return None, f"from scratch: checkpoint {path.name} of {previous} is missing"
    return path, f"warm start from {previous}, its last epoch {last['epoch']} (not chosen on validation)"
