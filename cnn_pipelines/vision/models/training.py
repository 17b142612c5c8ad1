"""Resumable, checkpointed training of an image classifier read from the lake with tfds.

The checkpoint contract is the trading CNN's (``storage/checkpoints.py``): one ``.keras`` per epoch and a
``state.json`` with the fingerprint of the dataset and the exact config. The directory is named by that
fingerprint, so a demo run and a full run keep their own checkpoints, an unchanged model is not retrained,
and a killed run resumes after its last finished epoch. The epoch used for test predictions is the best by
validation accuracy (a slice of the training split); the test split is read only to report.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.storage.checkpoints import epoch_path, fingerprint, load_state, save_epoch
from cnn_pipelines.storage.lake import write_json
from cnn_pipelines.vision.datasets.catalog import DatasetSpec, as_training_dataset, class_names
from cnn_pipelines.vision.models.architectures import compile_classifier
from cnn_pipelines.vision.settings import VisionSettings

import keras  # noqa: E402  (after architectures, which sets the backend)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a trained classifier; part of its fingerprint."""

    epochs: int
    batch_size: int
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    patience: int = 5                   # stop after this many epochs without a better validation accuracy
    schedule: str = "cosine"            # learning rate per epoch: "cosine" decay to 0 over `epochs`, or "constant"
    validation_fraction: float = 0.1    # the last share of the training split, never trained on
    train_limit: int | None = None      # first N training images (demo sizes); None = all
    image_size: int | None = None       # resize (e.g. 28 -> 32 for the CIFAR network); None = as stored
    channels: int | None = None         # repeat grey into 3 channels for colour networks
    steps_per_execution: int = 8
    seed: int = 42


@dataclass
class TrainedClassifier:
    ckpt: Path
    epochs: pd.DataFrame                # epoch, loss, accuracy, val_loss, val_accuracy, seconds, images_per_s
    best_epoch: int
    trained_epochs: int                 # epochs run in this call (0: an identical model was already trained)
    stopped_early: bool
    class_names: list[str]
    n_train: int
    n_validation: int


def split_slices(n_train_split: int, cfg: TrainConfig) -> tuple[str, str, int, int]:
    """tfds slices for training and validation: validation is the split's tail, training its head (at most
    ``train_limit`` images), so the two never overlap."""
    n_val = max(1, int(round(n_train_split * cfg.validation_fraction)))
    n_train = n_train_split - n_val if cfg.train_limit is None else min(cfg.train_limit, n_train_split - n_val)
    return f"train[:{n_train}]", f"train[{n_train_split - n_val}:]", n_train, n_val


def dataset_identity(builder) -> dict:
    """What identifies the stored dataset's content (name, version, per-split sizes in bytes and shards)."""
    return {"name": builder.name, "version": str(builder.info.version),
            "splits": {k: {"num_examples": v.num_examples, "num_bytes": v.num_bytes,
                           "shard_lengths": list(v.shard_lengths)} for k, v in builder.info.splits.items()}}


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The rate for 1-based ``epoch``: constant, or a half-cosine from ``learning_rate`` that reaches a tenth of it
    in the last epoch. Depends on the epoch alone, so a resumed run continues the same schedule."""
    if cfg.schedule == "constant" or cfg.epochs <= 1:
        return cfg.learning_rate
    if cfg.schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {cfg.schedule!r}")
    progress = (epoch - 1) / (cfg.epochs - 1)
    return float(cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress))))


def best_epoch(epochs: list[dict]) -> int:
    """The epoch with the highest validation accuracy; on ties the earliest (a tie is not an improvement)."""
    best = max(r["val_accuracy"] for r in epochs)
    return min(r["epoch"] for r in epochs if r["val_accuracy"] == best)


def architecture(model: keras.Model) -> dict:
    """The network's layers and their settings, without names (Keras numbers auto-named layers per process,
    so the same network would otherwise look different in every run)."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "name"}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(model.get_config())


def train_classifier(name: str, build: Callable[[tuple[int, int, int], int], keras.Model], spec: DatasetSpec,
                     s: VisionSettings, cfg: TrainConfig, log: Callable[[str], None] = print,
                     stop_after: int | None = None) -> TrainedClassifier:
    """Train (or resume, or reuse) ``build``'s network on ``spec``; one checkpoint per epoch.

    ``stop_after`` ends the call after that many epochs (used to test resumption; a killed run behaves alike).
    """
    builder = spec.builder_for(s.data_dir)
    classes = class_names(builder)
    train_slice, val_slice, n_train, n_val = split_slices(builder.info.splits["train"].num_examples, cfg)
    shape = (cfg.image_size or builder.info.features["image"].shape[0],) * 2 + (
        cfg.channels or builder.info.features["image"].shape[-1],)
    network = build(shape, len(classes))
    config = {"model": name, "architecture": architecture(network), "dataset": dataset_identity(builder),
              "source": spec.source, **dataclasses.asdict(cfg)}
    fp = fingerprint(config=config)  # a changed layer, dataset or setting means a new model
    ckpt = s.models_dir / name / fp
    state = load_state(ckpt, fp)
    write_json(ckpt / "config.json", config)

    def read(split: str, shuffle: bool, seed: int = cfg.seed):
        return as_training_dataset(spec, s, split, cfg.batch_size, shuffle=shuffle, seed=seed,
                                   image_size=cfg.image_size, channels=cfg.channels)

    done, trained, stopped = len(state["epochs"]), 0, bool(state.get("stopped_early"))
    if done < cfg.epochs and not stopped:
        keras.utils.set_random_seed(cfg.seed + done)
        train_ds, val_ds = read(train_slice, True, cfg.seed + done), read(val_slice, False)
        if done:
            model = keras.models.load_model(epoch_path(ckpt, done))
            log(f"{name}: resuming after epoch {done} of {cfg.epochs}")
        else:
            model = compile_classifier(network, cfg.optimizer, cfg.learning_rate, cfg.steps_per_execution)
        for epoch in range(done + 1, cfg.epochs + 1):
            rate = learning_rate(cfg, epoch)
            model.optimizer.learning_rate.assign(rate)
            t0 = time.perf_counter()
            hist = model.fit(train_ds, epochs=1, verbose=0, shuffle=False)  # the dataset reshuffles itself
            train_s = time.perf_counter() - t0
            val_loss, val_acc = model.evaluate(val_ds, verbose=0)
            row = {"epoch": epoch, "learning_rate": rate, "loss": float(hist.history["loss"][-1]),
                   "accuracy": float(hist.history["accuracy"][-1]), "val_loss": float(val_loss),
                   "val_accuracy": float(val_acc), "train_seconds": train_s, "images_per_s": n_train / train_s}
            save_epoch(model, ckpt, state, row, started=t0)
            trained += 1
            log(f"{name}: epoch {epoch}/{cfg.epochs} loss {row['loss']:.4f} accuracy {row['accuracy']:.4f} "
                f"validation {row['val_accuracy']:.4f} ({row['images_per_s']:,.0f} images/s)")
            if epoch - best_epoch(state["epochs"]) >= cfg.patience:
                state["stopped_early"] = stopped = True
                write_json(ckpt / "state.json", state)
                log(f"{name}: no better validation accuracy for {cfg.patience} epochs; stopped after epoch {epoch}")
                break
            if stop_after is not None and trained >= stop_after:
                break
    return TrainedClassifier(ckpt, pd.DataFrame(state["epochs"]), best_epoch(state["epochs"]), trained, stopped,
                             classes, n_train, n_val)


@dataclass
class TestResult:
    accuracy: float
    labels: np.ndarray        # true class per test image
    predicted: np.ndarray     # predicted class
    confidence: np.ndarray    # predicted probability of the predicted class


def evaluate_on_test(result: TrainedClassifier, spec: DatasetSpec, s: VisionSettings, cfg: TrainConfig) -> TestResult:
    """The best epoch's predictions on the test split (read once, never used for any choice)."""
    model = keras.models.load_model(epoch_path(result.ckpt, result.best_epoch))
    ds = as_training_dataset(spec, s, "test", 1024, shuffle=False, image_size=cfg.image_size,
                             channels=cfg.channels)
    probs, labels = [], []
    for x, y in ds:
        probs.append(model.predict_on_batch(x))
        labels.append(y.numpy())
    p, y = np.concatenate(probs), np.concatenate(labels).astype(int)
    pred = p.argmax(axis=1)
    return TestResult(float((pred == y).mean()), y, pred, p.max(axis=1))
