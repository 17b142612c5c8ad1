"""Dagster wiring of the ``house_numbers`` dataset (SVHN format 1: PNGs + digitStruct.mat, read by our reader
and cropped as in the book): composed of MNIST digits offline, SVHN's own files online."""

import dataclasses
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_result, table_value
from cnn_pipelines.plots import markdown_image
from cnn_pipelines.storage import lake
from cnn_pipelines.storage.checkpoints import fingerprint
from cnn_pipelines.vision import reports
from cnn_pipelines.vision.datasets import house_numbers as hn
from cnn_pipelines.vision.datasets.catalog import DatasetSpec, load_numpy
from cnn_pipelines.vision.models.training import TrainConfig, validation_size
from cnn_pipelines.vision.settings import VisionSettings, synced

CROP = (32, 64)  # (h, w): up to five digits side by side; the book squeezes them into 32 x 32
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class HouseNumberSpec:
    """Where the house numbers come from and how the reader trains."""

    online: bool                           # True: SVHN format 1 downloaded; False: composed of MNIST digits
    train_numbers: int                     # offline: numbers composed for training and validation
    test_numbers: int                      # offline: numbers composed of the held-out MNIST digits
    train: TrainConfig
    demo: dict
    target: float | None                   # share of numbers fully right the default configuration must reach


def house_number_spec(online: bool) -> HouseNumberSpec:
    return HouseNumberSpec(
        online=online, train_numbers=24_000, test_numbers=3_000,
        train=TrainConfig(epochs=25, batch_size=32, learning_rate=2e-3, patience=8),
        # make run: 3,000 numbers, 8 epochs (about 55 s on 2 cores) read 40 % of held-out numbers fully right;
        # 400 numbers and 1 epoch read 2 %, which said nothing
        demo={"dataset": {"train_numbers": 3000, "test_numbers": 300}, "reader": {"epochs": 8}},
        target=None if online else 0.85)


class NumbersConfig(dg.Config):
    """How many house numbers to compose offline (``make run`` uses fewer)."""

    train_numbers: int | None = None
    test_numbers: int | None = None


def dataset_dir(s: VisionSettings) -> Path:
    return s.data_dir / "house_numbers"


def house_numbers_asset(spec: HouseNumberSpec, mnist: DatasetSpec | None, s: VisionSettings) -> dg.AssetsDefinition:
    source = ("SVHN format 1 (train.tar.gz, test.tar.gz) from ufldl.stanford.edu" if spec.online else
              "composed of the real MNIST digits (test numbers only of held-out digits)")

    @dg.asset(name="house_numbers", group_name="vision_datasets", kinds={"numpy"},
              deps=[] if spec.online else [mnist.name],
              description=f"Multi-digit house numbers in SVHN's format 1 (PNGs + digitStruct.mat), {source}; read "
                          f"back by our digitStruct reader and cropped to the boxes' union (+30 %), {CROP[0]}x{CROP[1]}.")
    @synced(s)
    def house_numbers(context: dg.AssetExecutionContext, config: NumbersConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        n_train = config.train_numbers or spec.train_numbers
        n_test = config.test_numbers or spec.test_numbers
        if spec.online:
            key = {"svhn": "format1"}
        else:
            key = {"mnist": str(mnist.builder_for(s.data_dir).info.version), "train": n_train, "test": n_test,
                   "composer": 1}
        out = dataset_dir(s) / fingerprint(config={**key, "crop": CROP})
        if not (out / "test_targets.npy").exists():
            for split, folder in format1_folders(spec, mnist, s, out, n_train, n_test, context.log.info).items():
                crops, targets, _ = hn.load_folder(folder, CROP)
                parts = {"train": (crops, targets)}
                if split == "train" and spec.online:  # SVHN has no validation split: its training tail validates
                    n_val = validation_size(len(crops))
                    parts = {"train": (crops[:-n_val], targets[:-n_val]), "validation": (crops[-n_val:], targets[-n_val:])}
                elif split != "train":
                    parts = {split: (crops, targets)}
                for name, (images, y) in parts.items():
                    lake.write_npy(out / f"{name}_images.npy", images)
                    lake.write_npy(out / f"{name}_targets.npy", y)
        lake.write_json(dataset_dir(s) / "current.json", {
            "path": str(out), "fingerprint": out.name, "source": source,
            "title": "SVHN house numbers" if spec.online else "house numbers composed of real MNIST digits",
            "default": (n_train, n_test) == (spec.train_numbers, spec.test_numbers)})
        arrays = load_arrays(out)
        folder = out / "format1" / "train" if not spec.online else s.download_dir / "svhn" / "train"
        lengths = pd.DataFrame({split: pd.Series(arrays[f"{split}_targets"][:, 0] + 1).value_counts().sort_index()
                                for split in SPLITS}).fillna(0).astype(int)
        lengths.index.name = "digits"
        y = arrays["train_targets"]
        numbers = hn.numbers_from_targets(y[:24])
        return asset_result(context, {
            "train_numbers": dg.MetadataValue.int(len(y)),
            "validation_numbers": dg.MetadataValue.int(len(arrays["validation_targets"])),
            "test_numbers": dg.MetadataValue.int(len(arrays["test_targets"])),
            "source": dg.MetadataValue.text(source),
            "format1_folder": dg.MetadataValue.path(str(folder)),
            "crop_shape": dg.MetadataValue.text(f"{CROP[0]} x {CROP[1]} x 3"),
            "digits_per_number": table_value(lengths.reset_index()),
            "raw_images": dg.MetadataValue.md(markdown_image(reports.raw_with_boxes(
                folder, 12, "house_numbers: format-1 images with their digitStruct.mat boxes"), "raw")),
            "crops": dg.MetadataValue.md(markdown_image(reports.house_number_examples(
                arrays["train_images"][:24], numbers, numbers, np.ones(24),
                "house_numbers: what the reader sees (crop of the boxes' union + 30 %)"), "crops")),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - t0, 1)),
        })

    return house_numbers


def format1_folders(spec: HouseNumberSpec, mnist: DatasetSpec | None, s: VisionSettings, out: Path, n_train: int,
                    n_test: int, log=print) -> dict[str, Path]:
    """SVHN's train/test folders (downloaded), or ours composed of MNIST digits: train numbers of the training
    digits, validation numbers of digits held out from those (the training split's tail), test numbers of the
    test digits, so neither validation nor test shows a digit image the reader was trained on."""
    if spec.online:
        return {split: hn.download_svhn(split, s.download_dir / "svhn") for split in ("train", "test")}
    x, y = load_numpy(mnist, s, "train")
    n_val_digits = validation_size(len(x))
    sources = {"train": (x[:-n_val_digits], y[:-n_val_digits]), "validation": (x[-n_val_digits:], y[-n_val_digits:]),
               "test": load_numpy(mnist, s, "test")}
    counts = {"train": n_train - validation_size(n_train), "validation": validation_size(n_train), "test": n_test}
    folders = {}
    for seed, split in enumerate(SPLITS, start=1):
        images, boxes = hn.compose_house_numbers(*sources[split], counts[split], seed)
        folders[split] = out / "format1" / split
        hn.write_folder(folders[split], images, boxes)
        log(f"house_numbers: wrote {counts[split]:,} {split} PNGs and digitStruct.mat")
    return folders


def load_arrays(folder: Path) -> dict[str, np.ndarray]:
    return {f"{split}_{kind}": np.load(Path(folder) / f"{split}_{kind}.npy", allow_pickle=False)
            for split in SPLITS for kind in ("images", "targets")}


