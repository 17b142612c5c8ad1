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

from cnn_pipelines.storage import objects
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


def previous_retrain(period: str, first: str, every: int, chains: int = 1, chain_start: str | None = None) -> str | None:
    """The retrain period whose model the retrain that predicts ``period`` warm-starts from: ``chains`` retrains
    before it (with C chains, C interleaved sequences of retrains train side by side). None where a chain
    starts: that retrain would be before ``first`` or before ``chain_start`` (a study's first test month).

    A function of the month and the study's settings only, never of what happens to be in the lake, so a month
    trains the same way on one machine and on a cluster that runs months in any order."""
    anchor = retrain_period(period, first, every)
    step = every * chains
    if months_from(first, anchor) < step:
        return None
    previous = str((pd.Period(pd.Timestamp(anchor), "M") - step).start_time.date())
    if chain_start is not None and pd.Timestamp(previous) < pd.Timestamp(chain_start):
        return None
    return previous


class WarmStartNotReadyError(RuntimeError):
    """A retrain's warm-start source has not been trained yet: the month waits for it rather than training
    from scratch (which would make its result depend on the order months happen to run in)."""

    def __init__(self, period: str, previous: str) -> None:
        super().__init__(
            f"{period} warm-starts from the model of {previous}, which is not in this lake yet. Materialize "
            f"research_job for {previous} first (a backfill runs the months of a chain in order), or start a new "
            f"chain at {period}: tag the run cnn/chain_start={period}, or set CNN_WARM_START=0")
        self.period, self.previous = period, previous


def layout_signature(layout: ImageLayout) -> dict:
    """What makes two image layouts the same grid for a network: families (columns) and look-backs (rows), in
    order. The scaler may differ (it is refitted on each window)."""
    return {"families": list(layout.families), "period_index": [int(i) for i in layout.period_index]}


def warm_start_source(models_root: Path, previous: str | None, period: str,
                      layout: ImageLayout) -> tuple[Path | None, str]:
    """(checkpoint to start ``period``'s training from, why): the last finished epoch of the ``previous`` retrain
    when its layout is the same grid; else (None, the reason training starts from scratch). A ``previous`` not
    trained yet raises ``WarmStartNotReadyError`` (the month waits for its source). Not its best
    validation-IC epoch: the previous validation window overlaps this period's (42 % of the sessions in demo,
    91 % in full), so starting from the epoch chosen on it would re-use a holdout and flatter ``best_val_ic``."""
    if previous is None:
        return None, "from scratch: a warm-start chain begins here (the first research period, or the study's first month)"
    if pd.Timestamp(previous) >= pd.Timestamp(period):
        raise ValueError(f"warm start of {period} from {previous}: only an earlier period's model may be used")
    objects.pull(Path(models_root) / previous)  # trained on another machine of a cluster
    state_path = Path(models_root) / previous / "state.json"
    if not state_path.exists():
        raise WarmStartNotReadyError(period, previous)
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
