"""Checkpoint directories shared by every model asset (trading and vision).

A checkpoint directory holds ``epoch_NN.keras`` after every epoch and ``state.json`` with the fingerprint of
the inputs and config plus one row per finished epoch. A re-run with the same fingerprint resumes after the
last completed epoch (or does nothing when all are done); a different fingerprint starts over. Every file is
written to a temporary name and renamed into place, so a kill never leaves half a checkpoint behind. For a
lake on object storage the directory is a local mirror: each file is uploaded once written (the epoch before
state.json), and a machine resuming another's training downloads the directory first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from cnn_pipelines.storage import objects
from cnn_pipelines.storage.lake import write_json


def fingerprint(*arrays: np.ndarray, config: dict) -> str:
    """Hash of the training inputs and config: unchanged inputs mean a finished model is not retrained."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def choose_ensemble(epochs: list[dict], top_k: int) -> list[int]:
    """The top-k epochs by validation IC (the earlier on ties), or the last epoch when none has an IC."""
    scored = sorted((e for e in epochs if e.get("val_ic") == e.get("val_ic") and e.get("val_ic") is not None),
                    key=lambda e: (-e["val_ic"], e["epoch"]))
    return sorted(int(e["epoch"]) for e in scored[:top_k]) or ([int(max(e["epoch"] for e in epochs))] if epochs else [])


def epoch_path(ckpt: Path, epoch: int) -> Path:
    return Path(ckpt) / f"epoch_{epoch:02d}.keras"


def load_state(ckpt: Path, fp: str) -> dict:
    """The directory's state if it was written for this fingerprint; otherwise a fresh, emptied directory."""
    ckpt = Path(ckpt)
    objects.pull(ckpt, exact=True)  # a lake on object storage: the bucket's checkpoints, whoever trained them
    state_path = ckpt / "state.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("fingerprint") == fp and all(epoch_path(ckpt, e["epoch"]).exists() for e in state["epochs"]):
            return state
        shutil.rmtree(ckpt)  # inputs or config changed: the old checkpoints describe another model
        objects.remove(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    return {"fingerprint": fp, "epochs": []}


def save_keras(model, path: Path) -> Path:
    """Save a Keras model atomically: written beside ``path`` under a hidden name, then renamed onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    objects.push(path)
    return path


def save_epoch(model, ckpt: Path, state: dict, row: dict, started: float | None = None) -> None:
    """Save the epoch's model, then record it in state.json (in that order: state never names a missing file).

    With ``started`` (a ``time.perf_counter()`` reading), ``row["seconds"]`` is the epoch's time including the save.
    """
    save_keras(model, epoch_path(Path(ckpt), row["epoch"]))
    if started is not None:
        row["seconds"] = time.perf_counter() - started
    state["epochs"].append(row)
    write_json(ckpt / "state.json", state)
