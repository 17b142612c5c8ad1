"""The CNN-TA network (Keras 3) and its resumable, checkpointed training on one walk-forward period.

Checkpoints: ``<dir>/epoch_NN.keras`` after every epoch, and ``<dir>/state.json`` with the fingerprint of
the inputs and config, per-epoch loss and validation IC. A re-run with the same fingerprint resumes after
the last completed epoch (or does nothing when all are done); a different fingerprint starts over.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from cnn_pipelines.inference import predict_batches  # noqa: E402

from cnn_pipelines.trading.evaluation.metrics import daily_ic  # noqa: E402,F401  (re-exported: training picks epochs by it)
from cnn_pipelines.storage import objects  # noqa: E402
from cnn_pipelines.storage.checkpoints import choose_ensemble, epoch_path, fingerprint, load_state, save_epoch  # noqa: E402,F401
from cnn_pipelines.trading.settings import ResearchSettings  # noqa: E402

FLOPS_PER_SAMPLE_FORWARD = (
    2 * 15 * 15 * 16 * 3 * 3 * 1      # conv 16
    + 2 * 15 * 15 * 32 * 3 * 3 * 16   # conv 32
    + 2 * 7 * 7 * 32 * 32             # dense 32
    + 2 * 32                          # output
)


def build_cnn(s: ResearchSettings, input_shape: tuple[int, int, int] = (15, 15, 1),
              dtype: str = "float32") -> keras.Model:
    """The book's CNN-TA: two 3x3 'same' ReLU convolutions (16, 32), 2x2 max-pool, dropout .25, dense 32,
    dropout .5, linear output; SGD with momentum on MSE. ``dtype="mixed_bfloat16"`` computes in bf16 with
    fp32 weights (the output stays fp32)."""
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", dtype=dtype),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", dtype=dtype),
        keras.layers.MaxPooling2D(2, dtype=dtype),
        keras.layers.Dropout(0.25, dtype=dtype),
        keras.layers.Flatten(dtype=dtype),
        keras.layers.Dense(32, activation="relu", dtype=dtype),
        keras.layers.Dropout(0.5, dtype=dtype),
        keras.layers.Dense(1, dtype="float32"),
    ])
    # steps_per_execution: several batches per graph call; a network this small is bound by per-step overhead.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=s.learning_rate, momentum=s.momentum), loss="mse",
                  jit_compile=jit_compile(), steps_per_execution=s.steps_per_execution)
    return model


def persist_compilations() -> None:
    """On JAX, keep XLA's compiled steps on disk (``$JAX_COMPILATION_CACHE_DIR``, else ~/.cache/cnn-pipelines/jax).
    Every walk-forward period builds a fresh network of the same shapes, and JAX would compile its training and
    prediction steps again each time (up to 10 s per period on an H200; the cache is keyed by the program,
    the device and the JAX version, so a hit is the same code)."""
    if keras.backend.backend() != "jax":
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(Path.home() / ".cache" / "cnn-pipelines" / "jax"))


persist_compilations()


def jit_compile() -> bool:
    """XLA only off TensorFlow: on this project's CPUs TF's oneDNN kernels train ~7x faster than XLA (measured),
    while Keras' JAX backend (what runs on a GPU machine without TensorFlow) is eager, and crawls, without it."""
    return keras.backend.backend() != "tensorflow"


@dataclass
class TrainingResult:
    epochs: pd.DataFrame        # epoch, loss, val_ic, val_ic_se, seconds
    ensemble: list[int]         # epochs averaged for predictions (top-k by validation IC)
    trained_epochs: int         # epochs run in this call (0 when resumed complete)
    samples_per_s: float
    stopped_early: bool = False  # warm-started and stopped: validation IC stopped improving


def stop_now(epochs: list[dict], patience: int | None) -> bool:
    """Early stopping on validation IC: the newest ``patience`` epochs brought no better IC than before them."""
    if patience is None or len(epochs) <= patience:
        return False
    ics = [e["val_ic"] if np.isfinite(e["val_ic"]) else -np.inf for e in epochs]
    return max(ics[-patience:]) <= max(ics[:-patience])


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """Training batches reshuffled every epoch: shuffled row indices, batched, then one gather per batch.

    Gathering whole batches from in-memory tensors instead of shuffling element by element keeps the input
    pipeline off the two cores the network needs (measured: 4.9k -> 6.8k samples/s at batch 256). The
    pipeline is fixed, so tf.data's autotuner is off: with it on, whole epochs ran at exactly half speed
    (5,865 vs ~11k samples/s) in 4-6 of 10 identical runs on this 2-core machine; without it, in none.
    """
    import tensorflow as tf

    xt, yt = tf.constant(x), tf.constant(y.astype(np.float32))
    idx = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return idx.map(lambda i: (tf.gather(xt, i), tf.gather(yt, i))).prefetch(2).with_options(options)


def epoch_fitter(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int,
                 seed: int) -> Callable[[], keras.callbacks.History]:
    """One call = one epoch over reshuffled batches: through ``make_dataset`` on TensorFlow; on another Keras
    backend (JAX on a GPU machine) from the arrays, which Keras reshuffles and its JAX loop copies to the GPU
    one batch ahead."""
    if keras.backend.backend() == "tensorflow":
        ds = make_dataset(x, y, batch_size, seed)
        return lambda: model.fit(ds, epochs=1, verbose=0, shuffle=False)  # the dataset reshuffles itself
    y = y.astype(np.float32)
    return lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """One prediction per image, batches of 1,024 (``inference.predict_batches``: no graph traced per model)."""
    if not len(x):
        return np.zeros(0, np.float32)
    return predict_batches(model, x, batch_size)[:, 0].astype(np.float32, copy=False)


def train_epochs(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 val_dates: np.ndarray, s: ResearchSettings, ckpt: Path, fp: str,
                 log: Callable[[str], None] = print, init: Path | None = None, patience: int | None = None,
                 dtype: str = "float32", state_extra: dict | None = None) -> Iterator[dict]:
    """Train (or resume) epoch by epoch, yielding each epoch's row once its checkpoint and state are on disk.

    ``init``: a checkpoint whose weights start training (warm start; a fresh optimizer). ``patience``: stop
    once that many epochs bring no better validation IC (a re-run finds the same and does not go on).
    ``state_extra`` is stored in state.json (what the model was started from, its layout). Stopping the
    iteration anywhere (or killing the process) leaves a resumable state.
    """
    ckpt = Path(ckpt)
    state = load_state(ckpt, fp)
    state.update(state_extra or {})
    done = len(state["epochs"])
    if done >= s.epochs or stop_now(state["epochs"], patience):
        return
    keras.utils.set_random_seed(s.seed + done)
    if done:  # the saved model: its weights, dtype policy and optimizer state (momentum) go on
        model = keras.models.load_model(epoch_path(ckpt, done))
        log(f"resuming after epoch {done} of {s.epochs}")
    else:
        model = build_cnn(s, x_train.shape[1:], dtype)
        if init is not None:
            model.set_weights(keras.models.load_model(init).get_weights())
    fit = epoch_fitter(model, x_train, y_train, s.batch_size, s.seed + done)
    for epoch in range(done + 1, s.epochs + 1):
        t0 = time.perf_counter()
        hist = fit()
        train_s = time.perf_counter() - t0
        ic = daily_ic(val_dates, predict(model, x_val), y_val)
        row = {"epoch": epoch, "loss": float(hist.history["loss"][-1]), "val_ic": float(ic.mean()) if len(ic) else float("nan"),
               "val_ic_se": float(ic.std() / np.sqrt(len(ic))) if len(ic) > 1 else float("nan"),
               "train_seconds": train_s, "train_samples_per_s": len(x_train) / train_s}
        save_epoch(model, ckpt, state, row, started=t0)
        log(f"epoch {epoch}/{s.epochs}: loss {row['loss']:.6f}, validation IC {row['val_ic']:+.4f}, "
            f"{row['seconds']:.1f}s ({row['train_samples_per_s']:,.0f} samples/s)")
        yield row
        if stop_now(state["epochs"], patience):
            log(f"stopping after epoch {epoch}: no better validation IC in the last {patience} epochs")
            return


def train_period(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 val_dates: np.ndarray, s: ResearchSettings, ckpt: Path, fp: str,
                 log: Callable[[str], None] = print, stop_after: int | None = None, init: Path | None = None,
                 patience: int | None = None, dtype: str = "float32",
                 state_extra: dict | None = None) -> TrainingResult:
    """Train (or resume) with one checkpoint per epoch; choose the ensemble on the validation slice only.

    ``init``/``patience``/``dtype``/``state_extra``: see ``train_epochs``. ``stop_after`` ends the call after
    that many epochs (used to test resumption; a killed run behaves alike).
    """
    rows = []
    for row in train_epochs(x_train, y_train, x_val, y_val, val_dates, s, ckpt, fp, log, init, patience, dtype,
                            state_extra):
        rows.append(row)
        if stop_after is not None and len(rows) >= stop_after:
            break
    state = json.loads((Path(ckpt) / "state.json").read_text())
    epochs = pd.DataFrame(state["epochs"])
    ensemble = choose_ensemble(state["epochs"], s.top_k)
    train_s = sum(r["train_seconds"] for r in rows)
    sps = len(x_train) * len(rows) / train_s if rows else float("nan")
    return TrainingResult(epochs, ensemble, len(rows), sps, stop_now(state["epochs"], patience))


@functools.lru_cache(maxsize=16)
def _loaded(path: str, mtime_ns: int, size: int) -> keras.Model:
    return keras.models.load_model(path)


def load_checkpoint(path: Path) -> keras.Model:
    """A saved epoch's network, loaded once per process while its file is unchanged: a month's ensemble is read
    by cnn_model (the unseen-days validation IC) and again by oos_predictions in the same run."""
    objects.pull(path)  # saved by another machine of a cluster
    st = Path(path).stat()
    return _loaded(str(path), st.st_mtime_ns, st.st_size)


def predict_ensemble(ckpt: Path, epochs: list[int], x: np.ndarray) -> np.ndarray:
    """Mean prediction of the chosen epochs' checkpoints."""
    preds = [predict(load_checkpoint(epoch_path(ckpt, e)), x) for e in epochs]
    return np.mean(preds, axis=0) if preds else np.zeros(len(x))
