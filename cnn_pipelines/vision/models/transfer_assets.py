"""Dagster wiring of a transfer chain (group vision_transfer): backbone -> bottleneck_features -> head ->
fine_tuned, from_scratch beside them, and learning_curve comparing transfer, fine-tuning and scratch by
labelled images.

Each stage stores its result under ``<lake>/vision_models/<chain>/<stage>/<fingerprint>/`` and points the next
stage at it with ``current.json``: a changed backbone, dataset or setting gives a new fingerprint, and an
unchanged one is not recomputed.
"""

import dataclasses
import functools
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_result, percent_value, table_value
from cnn_pipelines.plots import markdown_image
from cnn_pipelines.storage import lake
from cnn_pipelines.storage.checkpoints import fingerprint, save_keras
from cnn_pipelines.vision import reports
from cnn_pipelines.vision.datasets.catalog import DatasetSpec, class_names, load_numpy
from cnn_pipelines.vision.models.architectures import compile_classifier, keras
from cnn_pipelines.vision.models.assets import checkpoint_metadata
from cnn_pipelines.vision.models.catalog import TransferSpec
from cnn_pipelines.vision.models.training import (TrainConfig, architecture, fit_in_memory, train_arrays,
                                                  validation_size)
from cnn_pipelines.vision.models.transfer import (budget_split, build_backbone, classification_head, extract_features,
                                                  nested_subsets, preprocess, stacked)
from cnn_pipelines.vision.settings import VisionSettings, synced
from cnn_pipelines.inference import predict_batches


class StageConfig(dg.Config):
    """Overrides of a chain stage's training settings (defaults: all of the target's labelled images)."""

    epochs: int | None = None


class CurveConfig(dg.Config):
    """Overrides of the learning curve (``make run`` uses two small points and one seed)."""

    sizes: list[int] | None = None
    seeds: int | None = None
    min_steps: int | None = None
    epochs: int | None = None


def stage_dir(s: VisionSettings, chain: TransferSpec, stage: str) -> Path:
    return s.models_dir / chain.name / stage


def publish(s: VisionSettings, chain: TransferSpec, stage: str, info: dict) -> None:
    lake.write_json(stage_dir(s, chain, stage) / "current.json", info)


def current(s: VisionSettings, chain: TransferSpec, stage: str) -> dict:
    """What the newest materialization of ``stage`` produced; a clear error when it has not run."""
    path = stage_dir(s, chain, stage) / "current.json"
    if not path.exists():
        raise FileNotFoundError(f"{chain.name}/{stage} has not been materialized yet ({path} is missing); "
                                f"materialize it first")
    return lake.read_json(path)


# --- data -------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class TargetImages:
    """The target dataset as the backbone sees it: uint8 images at its input size, labels, class names."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    names: list[str]
    n_val: int

    def split(self, x: np.ndarray, y: np.ndarray):
        """(train, validation) halves of a training array pair: the tail validates, as in part 1."""
        return (x[:-self.n_val], y[:-self.n_val]), (x[-self.n_val:], y[-self.n_val:])


def target_images(chain: TransferSpec, dataset: DatasetSpec, s: VisionSettings) -> TargetImages:
    size = chain.backbone.image_size
    channels = chain.backbone.channels
    train_x, train_y = load_numpy(dataset, s, chain.train_split, image_size=size, channels=channels)
    test_x, test_y = load_numpy(dataset, s, chain.test_split, image_size=size, channels=channels)
    return TargetImages(train_x, train_y, test_x, test_y, class_names(dataset.builder_for(s.data_dir)),
                        validation_size(len(train_x)))


def load_features(info: dict) -> dict[str, np.ndarray]:
    folder = Path(info["path"])
    return {k: np.load(folder / f"{k}.npy", allow_pickle=False)
            for k in ("train_features", "train_labels", "test_features", "test_labels")}


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, transform=None) -> tuple[float, np.ndarray, np.ndarray]:
    """Test accuracy, predicted classes and their probabilities."""
    probs = np.concatenate([predict_batches(model, x[i:i + 512] if transform is None else transform(x[i:i + 512]), 512)
                            for i in range(0, len(x), 512)])
    pred = probs.argmax(axis=1)
    return float((pred == y).mean()), pred, probs.max(axis=1)


# --- assets -----------------------------------------------------------------------------------------------------

def transfer_assets(chain: TransferSpec, dataset: DatasetSpec, s: VisionSettings) -> list[dg.AssetsDefinition]:
    bb = chain.backbone
    prefix = [chain.name]
    group = "vision_transfer"
    key = lambda stage: dg.AssetKey([chain.name, stage])  # noqa: E731
    to_input = functools.partial(preprocess, kind=bb.preprocess)

    @dg.asset(key_prefix=prefix, name="backbone", group_name=group, kinds={"keras"},
              deps=[bb.checkpoint_of] if bb.checkpoint_of else [],
              description=f"{bb.title}, without its classifier, "
                          f"{'flattened' if bb.pooling == 'flatten' else 'global-average pooled'}: the frozen "
                          f"feature extractor of the {chain.name} chain.")
    @synced(s)
    def backbone(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        if bb.application is None:
            if bb.checkpoint_of not in lake.materialized_keys(s.lake_root, "vision_results", column="model"):
                raise FileNotFoundError(f"no trained {bb.checkpoint_of} in the lake's vision_results; materialize it first")
            row = lake.read_partitions(s.lake_root, "vision_results", [bb.checkpoint_of], column="model")
            ckpt, epoch = Path(row["checkpoint"].iloc[0]), int(row["best_epoch"].iloc[0])
            source = f"{bb.checkpoint_of} checkpoint {ckpt.name}, epoch {epoch} (its best by validation accuracy)"
            config = {"checkpoint": ckpt.name, "epoch": epoch, "last_layer": bb.last_layer, "pooling": bb.pooling}
            trained = source_model(row.iloc[0])
        else:
            source, config = f"keras.applications.{bb.application}(weights={bb.weights!r})", {
                "application": bb.application, "weights": bb.weights, "size": bb.image_size}
            trained = None
        out = stage_dir(s, chain, "backbone") / fingerprint(config=config)
        path = out / "backbone.keras"
        if not path.exists():
            src = keras.models.load_model(ckpt / f"epoch_{epoch:02d}.keras") if bb.application is None else None
            save_keras(build_backbone(bb, src), path)
        model = keras.models.load_model(path)
        names = [la.name for la in model.layers]
        top = names.index(bb.top_block)
        top_params = sum(int(np.prod(w.shape)) for la in model.layers[top:] for w in la.weights)
        publish(s, chain, "backbone", {"path": str(path), "fingerprint": path.parent.name, "source": source,
                                       "source_model": trained})
        return asset_result(context, {
            "source": dg.MetadataValue.text(source),
            "input_shape": dg.MetadataValue.text(str(model.input_shape[1:])),
            "feature_dimension": dg.MetadataValue.int(int(model.output_shape[-1])),
            "parameters": dg.MetadataValue.int(int(model.count_params())),
            "fine_tuned_block": dg.MetadataValue.text(
                f"from {bb.top_block} on: {len(names) - top} layers, {top_params:,} parameters"),
            "layers": table_value(pd.DataFrame({
                "layer": names, "output": [str(la.output.shape[1:]) for la in model.layers],
                "parameters": [la.count_params() for la in model.layers]})),
            "path": dg.MetadataValue.path(str(path)),
        })

    @dg.asset(key_prefix=prefix, name="bottleneck_features", group_name=group, kinds={"numpy"},
              deps=[key("backbone"), dataset.name],
              description=f"The frozen backbone's features for every {dataset.name} image ({chain.train_split} "
                          f"and {chain.test_split}), as .npy files in the lake (no pickles).")
    @synced(s)
    def bottleneck_features(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        back = current(s, chain, "backbone")
        data = target_images(chain, dataset, s)
        fp = fingerprint(data.train_x, data.test_x, config={"backbone": back["fingerprint"], "dataset": dataset.name,
                                                            "splits": [chain.train_split, chain.test_split]})
        out = stage_dir(s, chain, "bottleneck_features") / fp
        seconds = None
        if not (out / "test_labels.npy").exists():
            model = keras.models.load_model(back["path"])
            t1 = time.perf_counter()
            arrays = {"train_features": extract_features(model, data.train_x, bb.preprocess),
                      "train_labels": data.train_y,
                      "test_features": extract_features(model, data.test_x, bb.preprocess),
                      "test_labels": data.test_y}
            seconds = time.perf_counter() - t1
            for name, arr in arrays.items():
                lake.write_npy(out / f"{name}.npy", arr)
        publish(s, chain, "bottleneck_features", {"path": str(out), "fingerprint": fp, "backbone": back["fingerprint"]})
        feats = arrays if seconds is not None else load_features({"path": str(out)})
        n = len(feats["train_features"]) + len(feats["test_features"])
        size_mb = sum(p.stat().st_size for p in out.glob("*.npy")) / 1e6
        context.log.info(f"{chain.name}: {n:,} images -> {feats['train_features'].shape[1]} features each")
        return asset_result(context, {
            "train_images": dg.MetadataValue.int(len(feats["train_features"])),
            "test_images": dg.MetadataValue.int(len(feats["test_features"])),
            "feature_dimension": dg.MetadataValue.int(int(feats["train_features"].shape[1])),
            "images_per_s": dg.MetadataValue.float(round(n / seconds, 1)) if seconds else
            dg.MetadataValue.text("n/a: features already stored for this backbone and dataset"),
            "size_mb": dg.MetadataValue.float(round(size_mb, 1)),
            "path": dg.MetadataValue.path(str(out)),
            "feature_map": dg.MetadataValue.md(markdown_image(reports.feature_scatter(
                feats["test_features"], feats["test_labels"], data.names,
                f"{chain.name}: test images in the backbone's feature space (first two principal components)"),
                "features")),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - t0, 1)),
        })

    @dg.asset(key_prefix=prefix, name="head", group_name=group, kinds={"keras"}, deps=[key("bottleneck_features")],
              description="Notebook 09's top model (dense 256, dropout 0.5, softmax) trained on the bottleneck "
                          "features alone: the backbone is never run again while it trains.")
    @synced(s)
    def head(context: dg.AssetExecutionContext, config: StageConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        info = current(s, chain, "bottleneck_features")
        f = load_features(info)
        data_names = class_names(dataset.builder_for(s.data_dir))
        cfg = _override(chain.head, config)
        n_val = validation_size(len(f["train_labels"]), cfg.validation_fraction)
        x, y = f["train_features"][:-n_val], f["train_labels"][:-n_val]

        def start():
            return compile_classifier(classification_head(x.shape[1], len(data_names)), cfg.optimizer,
                                      cfg.learning_rate)

        trained = train_arrays(f"{chain.name}/head", stage_dir(s, chain, "head"), {"features": info["fingerprint"]},
                               start, x, y, f["train_features"][-n_val:], f["train_labels"][-n_val:], cfg,
                               log=context.log.info)
        acc, pred, conf = accuracy(trained.best(), f["test_features"], f["test_labels"])
        publish(s, chain, "head", published(trained, cfg, acc))
        return asset_result(context, _model_result(
            s, chain, dataset, "head", trained, cfg, chain.head, acc, f["test_labels"], pred, data_names,
            len(x), n_val, time.perf_counter() - t0, "trained on bottleneck features only"))

    @dg.asset(key_prefix=prefix, name="fine_tuned", group_name=group, kinds={"keras"},
              deps=[key("head"), key("backbone"), dataset.name],
              description=f"Backbone and trained head as one network; the backbone's top block (from "
                          f"{bb.top_block}) unfrozen and trained with the head at a low learning rate.")
    @synced(s)
    def fine_tuned(context: dg.AssetExecutionContext, config: StageConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        back, top = current(s, chain, "backbone"), current(s, chain, "head")
        data = target_images(chain, dataset, s)
        cfg = _override(chain.fine_tune, config)
        (x, y), (xv, yv) = data.split(data.train_x, data.train_y)

        def start():
            model = stacked(keras.models.load_model(back["path"]),
                            keras.models.load_model(Path(top["checkpoint"]) / f"epoch_{top['best_epoch']:02d}.keras"),
                            bb.top_block)
            return compile_classifier(model, cfg.optimizer, cfg.learning_rate)

        trained = train_arrays(f"{chain.name}/fine_tuned", stage_dir(s, chain, "fine_tuned"),
                               {"backbone": back["fingerprint"], "head": Path(top["checkpoint"]).name,
                                "head_epoch": top["best_epoch"], "top_block": bb.top_block},
                               start, x, y, xv, yv, cfg, transform=to_input, log=context.log.info)
        acc, pred, _ = accuracy(trained.best(), data.test_x, data.test_y, to_input)
        publish(s, chain, "fine_tuned", published(trained, cfg, acc))
        return asset_result(context, _model_result(
            s, chain, dataset, "fine_tuned", trained, cfg, chain.fine_tune, acc, data.test_y, pred, data.names,
            len(x), len(xv), time.perf_counter() - t0,
            f"head-only {top['test_accuracy']:.2%} before fine-tuning"))

    @dg.asset(key_prefix=prefix, name="from_scratch", group_name=group, kinds={"keras"},
              deps=[key("backbone"), dataset.name],
              description="The same network (backbone layers + head) trained on the target images from random "
                          "weights: what transfer learning is measured against.")
    @synced(s)
    def from_scratch(context: dg.AssetExecutionContext, config: StageConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        data = target_images(chain, dataset, s)
        cfg = _override(chain.scratch, config)
        (x, y), (xv, yv) = data.split(data.train_x, data.train_y)

        keras.utils.set_random_seed(cfg.seed)  # initial weights from the stage's seed, not from what ran before
        backbone_net = build_backbone(bb, pretrained=False)
        network = stacked(backbone_net, classification_head(backbone_net.output_shape[-1], len(data.names)), None)

        def start():
            return compile_classifier(network, cfg.optimizer, cfg.learning_rate)

        # the network's layers are part of the fingerprint: another backbone cut is another model
        trained = train_arrays(f"{chain.name}/from_scratch", stage_dir(s, chain, "from_scratch"),
                               {"backbone": bb.name, "architecture": architecture(network)}, start, x, y, xv, yv, cfg,
                               transform=to_input, log=context.log.info)
        acc, pred, _ = accuracy(trained.best(), data.test_x, data.test_y, to_input)
        publish(s, chain, "from_scratch", published(trained, cfg, acc))
        return asset_result(context, _model_result(
            s, chain, dataset, "from_scratch", trained, cfg, chain.scratch, acc, data.test_y, pred, data.names,
            len(x), len(xv), time.perf_counter() - t0, "random initial weights"))

    @dg.asset(key_prefix=prefix, name="learning_curve", group_name=group, kinds={"keras"},
              deps=[key("bottleneck_features"), key("head"), key("fine_tuned"), key("from_scratch")],
              description="Test accuracy against the number of labelled target images: head on bottleneck "
                          "features (transfer), that head and the backbone's top block fine-tuned, and the same "
                          f"network from scratch, on the same class-balanced subsets, each point the mean over "
                          f"{chain.curve_seeds} seeds by default (make run: one).")
    @synced(s)
    def learning_curve(context: dg.AssetExecutionContext, config: CurveConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        info, back = current(s, chain, "bottleneck_features"), current(s, chain, "backbone")
        f = load_features(info)
        data = target_images(chain, dataset, s)
        sizes = asked = list(config.sizes or chain.curve_sizes)
        seeds = chain.curve_seeds if config.seeds is None else config.seeds
        min_steps = chain.curve_min_steps if config.min_steps is None else config.min_steps
        head_cfg, tune_cfg, scratch_cfg = (chain.head, chain.fine_tune, chain.scratch) if config.epochs is None else (
            dataclasses.replace(chain.head, epochs=config.epochs), dataclasses.replace(chain.fine_tune, epochs=config.epochs),
            dataclasses.replace(chain.scratch, epochs=config.epochs))
        stage_cfgs = {"transfer": ("head", head_cfg), "fine_tuned": ("fine_tuned", tune_cfg),
                      "scratch": ("from_scratch", scratch_cfg)}
        (x, y), (xv, yv) = data.split(data.train_x, data.train_y)
        (fx, _), (fxv, _) = data.split(f["train_features"], f["train_labels"])
        sizes = sorted({min(int(n), len(x)) for n in sizes})  # sizes above all images are all images, once
        if seeds < 1 or not sizes or sizes[0] < 1:
            raise ValueError(f"learning curve: seeds must be >= 1 and sizes >= 1 (got seeds={seeds}, sizes={sizes})")
        fp = fingerprint(config={"features": info["fingerprint"], "sizes": sizes, "min_steps": min_steps,
                                 "epoch_choice": "lowest validation loss", "fine_tuned": dataclasses.asdict(tune_cfg),
                                 "top_block": bb.top_block,
                                 "head": dataclasses.asdict(head_cfg), "scratch": dataclasses.asdict(scratch_cfg)})
        state_path = stage_dir(s, chain, "learning_curve") / fp / "points.json"
        points = lake.read_json(state_path)["points"] if state_path.exists() else []
        # all images with a stage's own settings: that stage asset's model, not trained twice (fine-tuned only when
        # it started from a head with the curve's settings too); taken afresh each run, never cached, so a stage
        # materialized again is what the curve shows. It chose its epoch on the held-out tail: those labels count.
        stages = {m: current(s, chain, stage) for m, (stage, _) in stage_cfgs.items()}
        reused = [m for m, (_, c) in stage_cfgs.items() if stages[m]["config"] == dataclasses.asdict(c)
                  and (m != "fine_tuned" or stages["transfer"]["config"] == dataclasses.asdict(head_cfg))]
        reused_points = [{"requested": len(x), "seed": 0, "labelled_images": len(x) + len(xv), "method": m,
                          "test_accuracy": stages[m]["test_accuracy"], "validation_images": len(xv),
                          **{k: stages[m][k] for k in ("best_epoch", "epochs_run", "seconds", "val_accuracy")}}
                         for m in reused] if sizes[-1] == len(x) else []
        for seed in range(seeds):
            for n, idx in nested_subsets(y, sizes, seed=seed).items():
                if n == len(x) and seed > 0:
                    continue  # all images are the same subset for every seed: one point
                missing = [m for m in stage_cfgs if not _has_point(points + reused_points, n, m, seed)]
                if not missing:
                    continue
                tr, va = budget_split(idx, y)  # the epoch is chosen on labels counted in the point's budget
                cfg = {m: dataclasses.replace(c, seed=seed) for m, (_, c) in stage_cfgs.items()}
                acc = {}
                if "transfer" in missing or "fine_tuned" in missing:
                    def head_start():
                        return compile_classifier(classification_head(fx.shape[1], len(data.names)),
                                                  head_cfg.optimizer, head_cfg.learning_rate)
                    head_model, rec = fit_in_memory(head_start, fx[tr], y[tr], fx[va], y[va], cfg["transfer"],
                                                    min_steps)
                    acc["transfer"] = (accuracy(head_model, f["test_features"], f["test_labels"])[0], rec)
                if "fine_tuned" in missing:
                    def tuned_start():  # the backbone's trained layers and this point's head, top block unfrozen
                        top = classification_head(fx.shape[1], len(data.names))
                        top.set_weights(head_model.get_weights())
                        return compile_classifier(stacked(keras.models.load_model(back["path"]), top, bb.top_block),
                                                  tune_cfg.optimizer, tune_cfg.learning_rate)
                    model, rec = fit_in_memory(tuned_start, x[tr], y[tr], x[va], y[va], cfg["fine_tuned"], min_steps,
                                               to_input)
                    acc["fine_tuned"] = (accuracy(model, data.test_x, data.test_y, to_input)[0], rec)
                if "scratch" in missing:
                    def scratch_start():
                        net = build_backbone(bb, pretrained=False)
                        return compile_classifier(stacked(net, classification_head(net.output_shape[-1],
                                                                                   len(data.names)), None),
                                                  scratch_cfg.optimizer, scratch_cfg.learning_rate)
                    model, rec = fit_in_memory(scratch_start, x[tr], y[tr], x[va], y[va], cfg["scratch"], min_steps,
                                               to_input)
                    acc["scratch"] = (accuracy(model, data.test_x, data.test_y, to_input)[0], rec)
                for m in missing:
                    a, r = acc[m]
                    points.append({"requested": n, "seed": seed, "labelled_images": int(len(idx)), "method": m,
                                   "test_accuracy": a, "validation_images": int(len(va)),
                                   **{k: r[k] for k in ("best_epoch", "epochs_run", "seconds", "val_accuracy")}})
                lake.write_json(state_path, {"points": points})  # a killed run resumes at the next point
                context.log.info(f"{chain.name}, seed {seed}, {len(idx):,} labelled images: "
                                 + ", ".join(f"{m} {acc[m][0]:.2%}" for m in missing))
        points = [p for p in points if not _has_point(reused_points, p["requested"], p["method"], p["seed"])] \
            + reused_points
        curve = pd.DataFrame([p for p in points if p["requested"] in sizes and p["seed"] < seeds])
        finals = {stage: current(s, chain, stage)["test_accuracy"] for stage in ("head", "fine_tuned", "from_scratch")}
        default = config == CurveConfig()
        lake.write_table(s.lake_root, "transfer_learning_curve",
                         curve.assign(chain=chain.name, default_config=default), key=chain.name, column="chain")
        lake.ensure_views(s.lake_root, ["transfer_learning_curve"])
        table = curve_summary(curve)
        n_all, small = len(x), table.iloc[0]
        return asset_result(context, {
            "summary": dg.MetadataValue.md(
                f"**{chain.title}**, all {n_all:,} labelled training images: head on bottleneck features "
                f"**{finals['head']:.2%}**, fine-tuned **{finals['fine_tuned']:.2%}**, same network from scratch "
                f"**{finals['from_scratch']:.2%}** (test accuracy).\n\nWith {int(small.name):,} labelled images "
                f"({reports.seeds_text(int(small['seeds']))}): transfer {small['transfer']:.2%}, fine-tuned "
                f"{small['fine_tuned']:.2%}, scratch {small['scratch']:.2%}."
                + ("" if default else f"\n\n**Reduced settings** (as `make run` uses): {len(table)} label counts, "
                                      f"{reports.seeds_text(seeds)}, each point trained for at least {min_steps} "
                                      "gradient steps; the stages' final models train only a few epochs. The default "
                                      "configuration's numbers are in docs/vision.md.")),
            "head_accuracy_pct": percent_value(finals["head"]),
            "fine_tuned_accuracy_pct": percent_value(finals["fine_tuned"]),
            "scratch_accuracy_pct": percent_value(finals["from_scratch"]),
            "seeds": dg.MetadataValue.int(seeds),
            "curve": table_value(curve_table(table)),
            "learning_curve": dg.MetadataValue.md(markdown_image(reports.transfer_curve(
                table, n_all, f"{chain.name}: test accuracy by number of labelled target images"), "curve")),
            "chain": table_value(chain_table(chain, dataset, class_names(dataset.builder_for(s.data_dir)), asked,
                                             back.get("source_model"))),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - t0, 1)),
        })

    return [backbone, bottleneck_features, head, fine_tuned, from_scratch, learning_curve]


METHODS = ("transfer", "fine_tuned", "scratch")


def _has_point(points: list[dict], n: int, method: str, seed: int) -> bool:
    return any(p["requested"] == n and p["method"] == method and p["seed"] == seed for p in points)


def curve_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Per labelled-image count: each method's mean test accuracy over seeds, its spread (``<method>_sd``, the
    seeds' standard deviation; NaN for one seed) and the number of seeds. The all-images row is labelled with
    the most labels a method used there (a reused stage model's validation tail counts)."""
    grouped = curve.groupby(["requested", "method"])["test_accuracy"]
    mean = grouped.mean().unstack("method").reindex(columns=list(METHODS))
    sd = grouped.std(ddof=0).where(grouped.count() > 1)  # one seed has no spread: n/a, not 0
    sd = sd.unstack("method").reindex(columns=list(METHODS)).add_suffix("_sd")
    by_size = curve.groupby("requested")
    out = pd.concat([mean, sd, by_size["seed"].nunique().rename("seeds")], axis=1)
    # the all-images point counts the validation tail its stage models chose their epoch on
    out.index = by_size["labelled_images"].max().reindex(out.index).astype(int).values
    out.index.name = "labelled_images"
    return out.sort_index()


def curve_table(table: pd.DataFrame) -> pd.DataFrame:
    """The curve as its page shows it (narrow enough for the asset page's metadata column): labelled images,
    seeds, accuracies in % with the seeds' spread, and transfer's lead over scratch in points."""
    out = pd.DataFrame({"labels": table.index.astype(int), "seeds": table["seeds"].astype(int).values})
    for m, title in (("transfer", "transfer %"), ("fine_tuned", "fine-tuned %"), ("scratch", "scratch %")):
        out[title] = ["n/a" if a != a else f"{100 * a:.1f}" if d != d else f"{100 * a:.1f} ± {100 * d:.1f}"
                      for a, d in zip(table[m], table[f"{m}_sd"])]
    out["transfer − scratch, pts"] = (100 * (table["transfer"] - table["scratch"])).round(1).values
    return out


def source_model(row: pd.Series) -> str:
    """How a backbone's source model was trained (images, epochs, test accuracy, reduced or default settings),
    from its vision_results row: the backbone asset records it beside the checkpoint it cut, so the learning
    curve's page describes that checkpoint, not a newer one trained since."""
    settings = "its default settings" if bool(row["default_config"]) else "reduced settings, as make run uses"
    return (f"{int(row['n_train']):,} training images, {int(row['epochs_run'])} epoch(s), "
            f"{float(row['test_accuracy']):.2%} on its test images ({settings})")


def chain_table(chain: TransferSpec, target: DatasetSpec, classes: list[str], sizes: list[int] | None = None,
                trained: str | None = None) -> pd.DataFrame:
    """What the learning curve compares, for its page: the backbone and what it learned on (``trained``: how its
    source model was trained, ``source_model``), where it is cut, what fine-tuning unfreezes, the target task and the
    label counts of this run's points (``sizes``; the chain's defaults when not given)."""
    bb = chain.backbone
    source = (f"model {bb.checkpoint_of} (its best epoch)" if bb.checkpoint_of
              else f"keras.applications.{bb.application} ({bb.weights or 'random'} weights)")
    sizes = chain.curve_sizes if sizes is None else sizes
    rows = [("backbone", bb.title), ("trained as", source), *([("source task", chain.source)] if chain.source else []),
            *([("source model", trained)] if trained else []),
            ("cut after", f"{bb.last_layer or 'the last convolutional block'}, features {bb.pooling}-pooled"
             if bb.pooling != "flatten" else f"{bb.last_layer or 'the last convolutional block'}, features flattened"),
            ("fine-tuning unfreezes", f"from {bb.top_block} on, with the head"),
            ("target task", target.title),
            ("target classes", f"{len(classes)}: {', '.join(map(str, classes[:10]))}{', ...' if len(classes) > 10 else ''}"),
            ("labelled images per point", ", ".join("all" if n >= 10**8 else f"{n:,}" for n in sizes))]
    return pd.DataFrame(rows, columns=["setting", "value"])


def published(trained, cfg: TrainConfig, acc: float) -> dict:
    """What a model stage tells the stages after it (and the learning curve, which reuses it at all images)."""
    ep = trained.epochs
    return {"checkpoint": str(trained.ckpt), "best_epoch": trained.best_epoch, "test_accuracy": acc,
            "config": dataclasses.asdict(cfg), "epochs_run": len(ep), "seconds": float(ep["seconds"].sum()),
            "val_accuracy": float(ep.loc[ep["epoch"] == trained.best_epoch, "val_accuracy"].iloc[0])}


def _override(cfg: TrainConfig, config: StageConfig) -> TrainConfig:
    return cfg if config.epochs is None else dataclasses.replace(cfg, epochs=config.epochs)


def _model_result(s, chain, dataset, stage, trained, cfg, default, acc, labels, pred, names, n_train, n_val, wall,
                  note) -> dict:
    """Record a trained stage in the lake and its checkpoint folder; the materialization's metadata."""
    ep = trained.epochs
    result = {"model": f"{chain.name}.{stage}", "dataset": dataset.name, "dataset_title": dataset.title,
              "metric": f"test accuracy ({stage.replace('_', ' ')}, {chain.backbone.name} backbone)",
              "default_config": cfg == default,
              "test_accuracy": acc, "n_train": n_train,
              "n_validation": n_val, "n_test": len(labels), "best_epoch": trained.best_epoch, "epochs_run": len(ep),
              "images_per_s": float(ep["images_per_s"].median()), "checkpoint": str(trained.ckpt),
              "wall_seconds": wall}
    lake.write_table(s.lake_root, "vision_results", pd.DataFrame([result]), key=result["model"], column="model")
    lake.ensure_views(s.lake_root, ["vision_results"])
    lake.write_json(trained.ckpt / "metrics.json", {**result, "config": dataclasses.asdict(cfg)})
    title = f"{chain.name} {stage}"
    matrix = reports.confusion(labels, pred, len(names))
    return {
        "test_accuracy_pct": percent_value(acc),
        "summary": dg.MetadataValue.md(
            f"Test accuracy **{acc:.2%}** on {len(labels):,} {dataset.name} images ({note}); trained on "
            f"{n_train:,}, chosen epoch {trained.best_epoch} of {len(ep)} by validation accuracy on {n_val:,} more"
            + (f"; {trained.trained_epochs} epoch(s) trained in this run." if trained.trained_epochs
               else "; nothing retrained: inputs and config unchanged.")),
        **checkpoint_metadata(title, ep, trained.best_epoch, n_train, cfg, trained.ckpt, wall, matrix, names, acc,
                              trained.trained_epochs),
    }
