"""Dagster wiring of the ``house_number_reader`` (notebook 13): the multi-digit CNN trained on the
``house_numbers`` crops, checkpointed per epoch like every vision model."""

import dataclasses
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_result, percent, percent_value, settings_table, table_value
from cnn_pipelines.plots import markdown_image
from cnn_pipelines.storage import lake
from cnn_pipelines.storage.checkpoints import epoch_path, fingerprint, load_state
from cnn_pipelines.vision import reports
from cnn_pipelines.vision.datasets import house_numbers as hn
from cnn_pipelines.vision.datasets.house_number_assets import HouseNumberSpec, dataset_dir, load_arrays
from cnn_pipelines.vision.models import house_numbers as reader
from cnn_pipelines.vision.models.assets import timing_note
from cnn_pipelines.vision.models.architectures import keras
from cnn_pipelines.vision.models.training import TrainConfig, array_batches, best_epoch, run_epochs
from cnn_pipelines.vision.settings import VisionSettings, synced


class ReaderConfig(dg.Config):
    epochs: int | None = None


def train_reader(name: str, arrays: dict[str, np.ndarray], root: Path, cfg: TrainConfig, data_fp: str,
                 log=print, stop_after: int | None = None):
    """Checkpointed training of the multi-digit reader; the best epoch by validation share of numbers fully
    right. Returns (checkpoint dir, state, epochs trained now, stopped early, n_train, n_val)."""
    xt, yt, xv, yv = (arrays[k] for k in ("train_images", "train_targets", "validation_images", "validation_targets"))
    n_val = len(xv)
    probe = np.random.default_rng(cfg.seed).permutation(len(xt))[:2000]  # training accuracy on a fixed sample
    keras.utils.set_random_seed(cfg.seed)  # initial weights from the model's seed, not from what ran before it
    network = reader.multi_digit_cnn((*xt.shape[1:],))
    config = {"model": name, "data": data_fp, "layers": len(network.layers), "params": network.count_params(),
              **dataclasses.asdict(cfg)}
    fp = fingerprint(config=config)
    ckpt = root / fp
    state = load_state(ckpt, fp)
    lake.write_json(ckpt / "config.json", config)

    def start():
        return reader.compile_reader(network, cfg.learning_rate, cfg.steps_per_execution)

    def fit(model, epoch):
        hist = model.fit(array_batches(xt, reader.targets_dict(yt), cfg.batch_size, True, cfg.seed + epoch),
                         epochs=1, verbose=0, shuffle=False)
        pred, _ = reader.predict_numbers(model, xt[probe])
        return {"loss": float(hist.history["loss"][-1]),
                "accuracy": reader.sequence_scores(yt[probe], pred)["sequence_accuracy"]}

    def validate(model):
        pred, _ = reader.predict_numbers(model, xv)
        scores = reader.sequence_scores(yv, pred)
        loss = model.evaluate(array_batches(xv, reader.targets_dict(yv), 1024, False, 0), verbose=0)[0]
        return {"val_loss": float(loss), "val_accuracy": scores["sequence_accuracy"],
                "val_digit_accuracy": scores["digit_accuracy"]}

    trained, stopped = run_epochs(name, ckpt, state, cfg, start, fit, validate, len(xt), log, stop_after)
    return ckpt, state, trained, stopped, len(xt), n_val


def book_line(title: str) -> str:
    """The book's result, compared only where the data is the book's: SVHN photos are harder to read than
    numbers composed of MNIST digits on plain backgrounds."""
    return ("book: 83 % on SVHN" if title.startswith("SVHN") else
            "the book's 83 % is on SVHN photos, another dataset: not comparable")


def reader_asset(spec: HouseNumberSpec, s: VisionSettings) -> dg.AssetsDefinition:
    @dg.asset(name="house_number_reader", group_name="vision_models", deps=["house_numbers"],
              kinds={"keras", "tensorflow"},
              description="Notebook 13's multi-output CNN: the number's length and one softmax per digit position "
                          "(up to 5). Scored by the share of house numbers read fully right.")
    @synced(s)
    def house_number_reader(context: dg.AssetExecutionContext, config: ReaderConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        cfg = spec.train if config.epochs is None else dataclasses.replace(spec.train, epochs=config.epochs)
        data = lake.read_json(dataset_dir(s) / "current.json")
        arrays = load_arrays(Path(data["path"]))
        ckpt, state, trained, stopped, n_train, n_val = train_reader(
            "house_number_reader", arrays, s.models_dir / "house_number_reader", cfg, data["fingerprint"],
            log=context.log.info)
        best = best_epoch(state["epochs"])
        model = keras.models.load_model(epoch_path(ckpt, best))
        x, y = arrays["test_images"], arrays["test_targets"]
        pred, conf = reader.predict_numbers(model, x)
        scores = reader.sequence_scores(y, pred)
        by_length = reader_by_length(y, pred)
        ep = pd.DataFrame(state["epochs"])
        wall = time.perf_counter() - t0
        result = {"model": "house_number_reader", "dataset": "house_numbers", "dataset_title": data["title"],
                  "metric": "house numbers fully right", "default_config": cfg == spec.train and data["default"],
                  "test_accuracy": scores["sequence_accuracy"],
                  "digit_accuracy": scores["digit_accuracy"], "length_accuracy": scores["length_accuracy"],
                  "n_train": n_train, "n_validation": n_val, "n_test": len(y), "best_epoch": best,
                  "epochs_run": len(ep), "images_per_s": float(ep["images_per_s"].median()),
                  "checkpoint": str(ckpt), "wall_seconds": wall, "target": spec.target}
        lake.write_table(s.lake_root, "vision_results", pd.DataFrame([result]), key="house_number_reader",
                         column="model")
        lake.ensure_views(s.lake_root, ["vision_results"])
        lake.write_json(ckpt / "metrics.json", {**result, "config": dataclasses.asdict(cfg),
                                                "by_length": by_length.to_dict("records")})
        truth, read = hn.numbers_from_targets(y), hn.numbers_from_targets(pred)
        wrong = np.flatnonzero(np.array(truth) != np.array(read))
        worst = wrong[np.argsort(-conf[wrong])][:24]
        default = result["default_config"]
        target = ("" if spec.target is None else
                  f" (target {spec.target:.0%}: {'met' if scores['sequence_accuracy'] >= spec.target else 'NOT met'})"
                  if default else f" (reduced settings; the {spec.target:.0%} target is for the default configuration)")
        return asset_result(context, {
            "sequence_accuracy_pct": percent_value(scores["sequence_accuracy"]),
            "digit_accuracy_pct": percent_value(scores["digit_accuracy"]),
            "length_accuracy_pct": percent_value(scores["length_accuracy"]),
            "summary": dg.MetadataValue.md(
                f"**{scores['sequence_accuracy']:.2%}** of {len(y):,} held-out house numbers read fully right"
                f"{target}; {book_line(data['title'])}. Digits right: {scores['digit_accuracy']:.2%}; length right: "
                f"{scores['length_accuracy']:.2%}. Trained on {n_train:,} numbers, chosen epoch {best} of {len(ep)} "
                f"by the validation share fully right ({n_val:,} numbers)"
                + ("; stopped early" if stopped else "")
                + (f"; {trained} epoch(s) trained in this run." if trained else "; nothing retrained.")),
            "dataset": dg.MetadataValue.text(data["title"]),
            "by_length": table_value(by_length_shown(by_length)),
            "chosen_epoch": dg.MetadataValue.int(best),
            "images_per_s": dg.MetadataValue.float(round(result["images_per_s"], 1)),
            "wall_seconds": dg.MetadataValue.float(round(wall, 1)),
            **timing_note(trained),
            "config": settings_table(dataclasses.asdict(cfg)),
            "checkpoint": dg.MetadataValue.path(str(ckpt)),
            "learning_curves": dg.MetadataValue.md(markdown_image(reports.learning_curves(
                ep, best, "house_number_reader: loss and share of numbers fully right per epoch"), "curves")),
            "examples": dg.MetadataValue.md(markdown_image(reports.house_number_examples(
                x[:24], truth[:24], read[:24], conf[:24], "house_number_reader: held-out numbers, true vs read"),
                "examples")),
            "worst_failures": dg.MetadataValue.md(markdown_image(reports.house_number_examples(
                x[worst], [truth[i] for i in worst], [read[i] for i in worst], conf[worst],
                "house_number_reader: the most confident wrong readings"), "failures")),
        })

    return house_number_reader


def by_length_shown(by_length: pd.DataFrame) -> pd.DataFrame:
    """``reader_by_length`` as its page shows it: the shares in %."""
    shares = ["fully right", "digits right", "length right"]
    return by_length.assign(**{c: [percent(v, 1) for v in by_length[c]] for c in shares}).rename(
        columns={c: f"{c} %" for c in shares})


def reader_by_length(y: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Share of numbers fully right and of digits right, per true number length."""
    rows = []
    for n in np.unique(y[:, 0]):
        m = y[:, 0] == n
        scores = reader.sequence_scores(y[m], pred[m])
        rows.append({"digits": int(n) + 1, "numbers": int(m.sum()), "fully right": scores["sequence_accuracy"],
                     "digits right": scores["digit_accuracy"], "length right": scores["length_accuracy"]})
    return pd.DataFrame(rows)
