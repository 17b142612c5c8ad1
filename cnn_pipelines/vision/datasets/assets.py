"""Dagster wiring of the vision_datasets group: one asset per image dataset, built by tfds into the lake."""


import shutil
import time
from pathlib import Path

import dagster as dg
import numpy as np
import tensorflow_datasets as tfds

from cnn_pipelines.metadata import asset_result, percent_value, table_value
from cnn_pipelines.plots import markdown_image
from cnn_pipelines.vision.datasets.catalog import DatasetSpec, class_names, load_numpy, prepare
from cnn_pipelines.vision import reports
from cnn_pipelines.vision.settings import VisionSettings, synced


def dataset_asset(spec: DatasetSpec, s: VisionSettings) -> dg.AssetsDefinition:
    @dg.asset(name=spec.name, group_name="vision_datasets", kinds={"tensorflow"},
              description=f"{spec.title}, built by tfds builder `{spec.builder}` into "
                          f"{s.data_dir}/{spec.builder}/ (tfds's own format). Source: {spec.source}.")
    @synced(s)
    def _dataset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        tfds.disable_progress_bar()
        t0 = time.perf_counter()
        builder = prepare(spec, s)
        if spec.mirror is not None:  # the extracted copies of the mirror's files are not needed any more
            shutil.rmtree(s.download_dir / "extracted", ignore_errors=True)
        names = class_names(builder)
        shape = builder.info.features["image"].shape
        labels = {}
        for split in builder.info.splits:
            # photos of different sizes (cats vs dogs) are resized for the sample grid
            images, labels[split] = load_numpy(spec, s, split, image_size=96 if None in shape[:2] else None)
            if split == "train":
                grid = reports.sample_grid(images, labels[split], names,
                                           title=f"{spec.name}: 8 training images per class")
        balance = reports.class_balance(labels, names)
        version_dir = Path(str(builder.data_dir))
        size_mb = sum(p.stat().st_size for p in version_dir.rglob("*") if p.is_file()) / 1e6
        context.log.info(f"{spec.name}: {', '.join(f'{k} {len(v):,}' for k, v in labels.items())} images "
                         f"{shape} from {spec.source}")
        return asset_result(context, {
            **{f"{split}_images": dg.MetadataValue.int(len(v)) for split, v in labels.items()},
            "image_shape": dg.MetadataValue.text(" x ".join("any" if d is None else str(d) for d in shape)),
            "classes": dg.MetadataValue.int(len(names)),
            "source": dg.MetadataValue.text(spec.source),
            "tfds_builder": dg.MetadataValue.text(f"{builder.name} {builder.info.version}"),
            "path": dg.MetadataValue.path(str(version_dir)),
            "size_mb": dg.MetadataValue.float(round(size_mb, 1)),
            "class_balance": table_value(balance.reset_index()),
            "min_class_pct": percent_value(
                min(np.bincount(v, minlength=len(names)).min() / max(1, len(v)) for v in labels.values()), 1),
            "samples": dg.MetadataValue.md(markdown_image(grid, "samples")),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - t0, 1)),
        })

    return _dataset
