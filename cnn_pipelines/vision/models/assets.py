"""Dagster wiring of the vision_models group: one asset per model checkpoint, plus the filter demo."""


import dataclasses
import time

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_result, percent, percent_value, settings_table, table_value
from cnn_pipelines.plots import markdown_image
from cnn_pipelines.storage import lake
from cnn_pipelines.vision.datasets.catalog import DatasetSpec, load_numpy
from cnn_pipelines.vision import reports
from cnn_pipelines.vision.models.catalog import ModelSpec
from cnn_pipelines.vision.models.filters import run_filter_demo
from cnn_pipelines.vision.models.training import evaluate_on_test, train_classifier
from cnn_pipelines.vision.settings import VisionSettings, synced


class VisionTrainConfig(dg.Config):
    """Overrides of a model's default training settings (the defaults use all the offline data)."""

    epochs: int | None = None
    train_limit: int | None = None


def model_asset(spec: ModelSpec, dataset: DatasetSpec, s: VisionSettings) -> dg.AssetsDefinition:
    @dg.asset(name=spec.name, group_name="vision_models", deps=[dataset.name], kinds={"keras", "tensorflow"},
              description=f"{spec.title}. Checkpoint directory: one .keras per epoch, state.json, config.json.",
              metadata={"dataset": dataset.name, "book": spec.book})
    @synced(s)
    def _model(context: dg.AssetExecutionContext, config: VisionTrainConfig) -> dg.MaterializeResult:
        changes = {k: v for k, v in config.model_dump().items() if v is not None}
        cfg = dataclasses.replace(spec.config, **changes)
        t0 = time.perf_counter()
        trained = train_classifier(spec.name, spec.build, dataset, s, cfg, log=context.log.info)
        test = evaluate_on_test(trained, dataset, s, cfg)
        images, _ = load_numpy(dataset, s, "test")
        wall = time.perf_counter() - t0
        return asset_result(context, model_metadata(spec, dataset, s, cfg, trained, test, images, wall))

    return _model


def model_metadata(spec, dataset, s, cfg, trained, test, images, wall) -> dict:
    names = trained.class_names
    ep = trained.epochs
    matrix = reports.confusion(test.labels, test.predicted, len(names))
    per_class_n = matrix.sum(axis=1)
    per_class = pd.DataFrame({
        "class": names, "test images": per_class_n,
        "accuracy": np.where(per_class_n > 0, np.diag(matrix) / np.maximum(per_class_n, 1), np.nan),
    })
    shown = per_class.assign(accuracy=[percent(a, 1, "no test images") for a in per_class["accuracy"]]
                             ).rename(columns={"accuracy": "accuracy %"})
    result = {
        "model": spec.name, "dataset": dataset.name, "dataset_title": dataset.title, "source": dataset.source,
        "test_accuracy": test.accuracy, "n_train": trained.n_train, "n_validation": trained.n_validation,
        "n_test": len(test.labels), "best_epoch": trained.best_epoch, "epochs_run": len(ep),
        "val_accuracy": float(ep.loc[ep["epoch"] == trained.best_epoch, "val_accuracy"].iloc[0]),
        "images_per_s": float(ep["images_per_s"].median()), "target": spec.target, "book": spec.book,
        "checkpoint": str(trained.ckpt), "wall_seconds": wall, "default_config": cfg == spec.config,
    }
    lake.write_table(s.lake_root, "vision_results", pd.DataFrame([result]), key=spec.name, column="model")
    lake.write_table(s.lake_root, "vision_epochs", ep.assign(model=spec.name), key=spec.name, column="model")
    lake.ensure_views(s.lake_root, ["vision_results", "vision_epochs"])
    lake.write_json(trained.ckpt / "metrics.json", {**result, "config": dataclasses.asdict(cfg),
                                                    "per_class_accuracy": dict(zip(names, per_class["accuracy"]))})
    title = f"{spec.name} on {dataset.name}"
    if spec.target is None:
        target = ""
    elif cfg != spec.config:
        target = f" (reduced settings; the {spec.target:.0%} target applies to the default configuration)"
    else:
        target = f" (target {spec.target:.0%}: {'met' if test.accuracy >= spec.target else 'NOT met'})"
    return {
        "test_accuracy_pct": percent_value(test.accuracy),
        "summary": dg.MetadataValue.md(
            f"**{spec.title}**\n\nTest accuracy **{test.accuracy:.2%}** on {len(test.labels):,} held-out images"
            f"{target}; book: {spec.book}.\n\nTrained on {trained.n_train:,} images ({dataset.source}), "
            f"{trained.n_validation:,} more for validation; chosen epoch {trained.best_epoch} of {len(ep)} by "
            f"validation accuracy ({result['val_accuracy']:.2%})"
            + ("; stopped early" if trained.stopped_early else "")
            + (f"; {trained.trained_epochs} epoch(s) trained in this run" if trained.trained_epochs
               else "; nothing retrained: dataset and config unchanged") + "."),
        "dataset": dg.MetadataValue.text(f"{dataset.title} ({dataset.source})"),
        "epochs_run": dg.MetadataValue.int(len(ep)),
        **checkpoint_metadata(title, ep, trained.best_epoch, trained.n_train, cfg, trained.ckpt, wall, matrix, names,
                              test.accuracy, trained.trained_epochs),
        "worst_mistakes": dg.MetadataValue.md(markdown_image(reports.worst_mistakes(
            images, test.labels, test.predicted, test.confidence, names,
            title=f"{title}: the most confident wrong predictions"), "mistakes")),
        "per_class_accuracy": table_value(shown),
    }


def timing_note(trained_epochs: int) -> dict:
    """Where a run trained nothing (its checkpoints reused), says what its two timings measure: they no longer
    agree (582 images/s beside 0.7 s for 2,700 images and 8 epochs read as a bug)."""
    if trained_epochs:
        return {}
    return {"timing": dg.MetadataValue.text("nothing trained in this run (checkpoints reused): wall_seconds is "
                                            "this run's loading and testing; images_per_s is from the run that "
                                            "trained them")}


def checkpoint_metadata(title: str, ep: pd.DataFrame, best: int, n_train: int, cfg, ckpt, wall: float,
                        matrix: np.ndarray, names: list[str], accuracy: float, trained_epochs: int) -> dict:
    """What every trained classifier shows in the UI: chosen epoch, speed, settings, where the checkpoints are,
    the per-epoch curves and the test confusion matrix."""
    return {
        "chosen_epoch": dg.MetadataValue.int(best),
        "train_images": dg.MetadataValue.int(n_train),
        "images_per_s": dg.MetadataValue.float(round(float(ep["images_per_s"].median()), 1)),
        "wall_seconds": dg.MetadataValue.float(round(wall, 1)),
        **timing_note(trained_epochs),
        "config": settings_table(dataclasses.asdict(cfg)),
        "checkpoint": dg.MetadataValue.path(str(ckpt)),
        "learning_curves": dg.MetadataValue.md(markdown_image(
            reports.learning_curves(ep, best, f"{title}: loss and accuracy per epoch"), "curves")),
        "confusion_matrix": dg.MetadataValue.md(markdown_image(reports.confusion_plot(
            matrix, names, f"{title}: test confusion matrix ({accuracy:.2%} right)"), "confusion")),
    }


def filters_asset(s: VisionSettings) -> dg.AssetsDefinition:
    @dg.asset(name="conv_filters", group_name="vision_models", kinds={"keras"},
              description="Notebook 01: four hand-made 4x4 edge filters in a Conv2D layer, applied to a real photo.")
    @synced(s)
    def _filters(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        demo = run_filter_demo(s.models_dir / "conv_filters")
        return asset_result(context, {
            "image": dg.MetadataValue.text(demo.image_source),
            "input_shape": dg.MetadataValue.text(str(demo.image.shape)),
            "activation_shape": dg.MetadataValue.text(f"{demo.conv.shape} after the convolution, "
                                                      f"{demo.pooled.shape} after 4x4 max pooling"),
            "active_share": table_value(demo.stats),
            "filters": dg.MetadataValue.md(markdown_image(reports.filters_plot(demo.filters), "filters")),
            "activation_maps": dg.MetadataValue.md(markdown_image(
                reports.activation_maps(demo.image, demo.conv, demo.pooled, demo.labels), "activations")),
            "model": dg.MetadataValue.path(str(demo.model_path)),
        })

    return _filters
