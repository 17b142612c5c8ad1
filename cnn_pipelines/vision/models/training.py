"""Resumable, checkpointed training of an image classifier read from the lake with tfds.

The checkpoint contract is the trading CNN's (``storage/checkpoints.py``): one ``.keras`` per epoch and a
``state.json`` with the fingerprint of the dataset and the exact config. The directory is named by that
fingerprint, so a demo run and a full run keep their own checkpoints, an unchanged model is not retrained,
and a killed run resumes after its last finished epoch. The epoch used for test predictions is the best by
validation accuracy (a slice of the training split); the test split is read only to report.
"""

from __future__ import annotations

import dataclasses
import math
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
import tensorflow as tf  # noqa: E402

from cnn_pipelines.inference import predict_batches  # noqa: E402


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a trained classifier; part of its fingerprint."""

    epochs: int
    batch_size: int
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    patience: int = 5                   # stop after this many epochs without a better validation accuracy (loss,
                                        # for learning-curve points: fit_in_memory)
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


def validation_size(n: int, fraction: float = 0.1) -> int:
    """Images held out at the tail of a training split to choose epochs on (at least one)."""
    return max(1, int(round(n * fraction)))


def split_slices(n_train_split: int, cfg: TrainConfig) -> tuple[str, str, int, int]:
    """tfds slices for training and validation: validation is the split's tail, training its head (at most
    ``train_limit`` images), so the two never overlap."""
    n_val = validation_size(n_train_split, cfg.validation_fraction)
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


def lowest_loss_epoch(epochs: list[dict]) -> int:
    """The epoch with the lowest validation loss; on ties the earliest. For a learning-curve point, whose
    validation slice may be 10 images: its accuracy moves in 10-point steps, ties at once, and would keep the
    first epoch that reached it, long before the network is trained. Non-finite losses never win."""
    finite = [r for r in epochs if math.isfinite(r["val_loss"])]
    if not finite:  # every loss diverged: fall back to accuracy
        return best_epoch(epochs)
    best = min(r["val_loss"] for r in finite)
    return min(r["epoch"] for r in finite if r["val_loss"] == best)


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
    keras.utils.set_random_seed(cfg.seed)  # initial weights from the model's seed, not from what ran before it
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

    def start():
        return compile_classifier(network, cfg.optimizer, cfg.learning_rate, cfg.steps_per_execution)

    datasets: dict = {}

    def fit(model, epoch):
        if not datasets:  # read at the first epoch this call trains; the shuffle seed follows the epochs done
            datasets["train"], datasets["val"] = read(train_slice, True, cfg.seed + epoch - 1), read(val_slice, False)
        hist = model.fit(datasets["train"], epochs=1, verbose=0, shuffle=False)  # the dataset reshuffles itself
        return {"loss": float(hist.history["loss"][-1]), "accuracy": float(hist.history["accuracy"][-1])}

    def validate(model):
        val_loss, val_acc = model.evaluate(datasets["val"], verbose=0)
        return {"val_loss": float(val_loss), "val_accuracy": float(val_acc)}

    trained, stopped = run_epochs(name, ckpt, state, cfg, start, fit, validate, n_train, log, stop_after)
    return TrainedClassifier(ckpt, pd.DataFrame(state["epochs"]), best_epoch(state["epochs"]), trained, stopped,
                             classes, n_train, n_val)


def run_epochs(name: str, ckpt: Path, state: dict, cfg: TrainConfig, start: Callable[[], keras.Model],
               fit: Callable[[keras.Model, int], dict], validate: Callable[[keras.Model], dict], n_train: int,
               log: Callable[[str], None] = print, stop_after: int | None = None) -> tuple[int, bool]:
    """The checkpointed epoch loop every vision model shares: resume after the last saved epoch (or build with
    ``start``), set the epoch's learning rate, ``fit`` one epoch, ``validate`` (must give ``val_accuracy``),
    save, and stop when validation accuracy has not improved for ``cfg.patience`` epochs.

    Returns (epochs trained in this call, stopped early).
    """
    done, trained, stopped = len(state["epochs"]), 0, bool(state.get("stopped_early"))
    if done >= cfg.epochs or stopped:
        return 0, stopped
    keras.utils.set_random_seed(cfg.seed + done)
    if done:
        model = keras.models.load_model(epoch_path(ckpt, done))
        log(f"{name}: resuming after epoch {done} of {cfg.epochs}")
    else:
        model = start()
    for epoch in range(done + 1, cfg.epochs + 1):
        rate = learning_rate(cfg, epoch)
        model.optimizer.learning_rate.assign(rate)
        t0 = time.perf_counter()
        row = {"epoch": epoch, "learning_rate": rate, **fit(model, epoch)}
        row["train_seconds"] = time.perf_counter() - t0
        row["images_per_s"] = n_train / row["train_seconds"]
        row.update(validate(model))
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
    return trained, stopped


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
        probs.append(predict_batches(model, x.numpy()))
        labels.append(y.numpy())
    p, y = np.concatenate(probs), np.concatenate(labels).astype(int)
    pred = p.argmax(axis=1)
    return TestResult(float((pred == y).mean()), y, pred, p.max(axis=1))


@dataclass
class TrainedModel:
    ckpt: Path
    epochs: pd.DataFrame
    best_epoch: int
    trained_epochs: int
    stopped_early: bool

    def best(self) -> keras.Model:
        return keras.models.load_model(epoch_path(self.ckpt, self.best_epoch))


def array_batches(x: np.ndarray, y, batch_size: int, shuffle: bool, seed: int,
                  transform: Callable[[tf.Tensor], tf.Tensor] | None = None) -> tf.data.Dataset:
    """Batches of in-memory arrays (``y`` an array or a dict of arrays per output), reshuffled every epoch;
    ``transform`` (e.g. uint8 -> the backbone's scaling) runs per batch inside the pipeline, so the float copy
    of all images never exists."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if transform is not None:
        ds = ds.map(lambda a, b: (transform(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def train_arrays(name: str, ckpt_root: Path, config: dict, start: Callable[[], keras.Model], x: np.ndarray,
                 y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, cfg: TrainConfig,
                 transform: Callable | None = None, log: Callable[[str], None] = print,
                 stop_after: int | None = None) -> TrainedModel:
    """Checkpointed training of a single-output classifier on in-memory arrays (bottleneck features, or images
    with ``transform``). The directory is named by the fingerprint of ``config``, the arrays and ``cfg``."""
    fp = fingerprint(x, y, x_val, y_val, config={**config, **dataclasses.asdict(cfg)})
    ckpt = Path(ckpt_root) / fp
    state = load_state(ckpt, fp)
    write_json(ckpt / "config.json", {**config, **dataclasses.asdict(cfg)})
    val = array_batches(x_val, y_val, 1024, False, 0, transform)

    def fit(model, epoch):
        hist = model.fit(array_batches(x, y, cfg.batch_size, True, cfg.seed + epoch, transform), epochs=1,
                         verbose=0, shuffle=False)  # the dataset reshuffles itself
        return {"loss": float(hist.history["loss"][-1]), "accuracy": float(hist.history["accuracy"][-1])}

    def validate(model):
        val_loss, val_acc = model.evaluate(val, verbose=0)
        return {"val_loss": float(val_loss), "val_accuracy": float(val_acc)}

    trained, stopped = run_epochs(name, ckpt, state, cfg, start, fit, validate, len(x), log, stop_after)
    return TrainedModel(ckpt, pd.DataFrame(state["epochs"]), best_epoch(state["epochs"]), trained, stopped)


def fit_in_memory(start: Callable[[], keras.Model], x: np.ndarray, y: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, cfg: TrainConfig, min_steps: int = 0,
                  transform: Callable | None = None) -> tuple[keras.Model, dict]:
    """Train without checkpoints (a learning-curve point): at least ``min_steps`` gradient steps, so a tiny
    training set still gets trained, the same learning-rate schedule as ``run_epochs``, patience counted from the
    epoch of lowest validation loss, whose weights are restored at the end. Returns the model and its record."""
    epochs = max(cfg.epochs, int(np.ceil(min_steps * cfg.batch_size / max(1, len(x)))))
    cfg = dataclasses.replace(cfg, epochs=epochs, patience=max(cfg.patience, epochs // 4))
    keras.utils.set_random_seed(cfg.seed)
    model = start()
    val = array_batches(x_val, y_val, 1024, False, 0, transform)
    history, best_weights, t0 = [], None, time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.optimizer.learning_rate.assign(learning_rate(cfg, epoch))
        model.fit(array_batches(x, y, cfg.batch_size, True, cfg.seed + epoch, transform), epochs=1, verbose=0,
                  shuffle=False)
        loss, acc = model.evaluate(val, verbose=0)[:2]
        history.append({"epoch": epoch, "val_loss": float(loss), "val_accuracy": float(acc)})
        if lowest_loss_epoch(history) == epoch:
            best_weights = model.get_weights()
        elif epoch - lowest_loss_epoch(history) >= cfg.patience:
            break
    model.set_weights(best_weights)
    chosen = lowest_loss_epoch(history)
    return model, {"best_epoch": chosen, "epochs_run": len(history), "seconds": time.perf_counter() - t0,
                   "val_accuracy": next(r["val_accuracy"] for r in history if r["epoch"] == chosen)}
