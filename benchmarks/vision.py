"""Vision training-throughput benchmark: the book's input pipeline against ours, same network, same images.

- Book (notebook 03, "CNN with image augmentation"): the images as a float32 NumPy array in memory,
  augmented by Keras's ``ImageDataGenerator`` (10 % shifts, horizontal flips) in Python, batch 32, into
  ``model.fit``.
- Ours (the ``cifar_cnn`` asset's path): the dataset read with tfds, decoded and resized once into a uint8
  cache, shuffled and batched by tf.data, scaled per batch, prefetched; augmentation as Keras preprocessing
  layers inside the model (in the graph, not in Python); batch 128, 8 steps per graph call.

Same network (the AlexNet-style CNN at ``--width``), same training images, same epochs, same optimizer
(Adam, as in the book; constant learning rate for both). Epochs alternate between the two so this noisy 2-core VM slows both alike; the first
epoch of each (graph tracing) is left out of the ratio when there is more than one. Accuracy is each model's
on the same held-out test images after the same number of epochs.

    .venv/bin/python benchmarks/vision.py --train 12000 --epochs 4

The last line is a JSON object: ratio (our training images/s over the book's), images_per_s,
reference_images_per_s, accuracy, reference_accuracy, and the CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time

import numpy as np


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist", help="dataset asset (offline: fashion_mnist or mnist)")
    parser.add_argument("--train", type=int, default=12000, help="training images")
    parser.add_argument("--test", type=int, default=5000, help="test images for the accuracies")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=float, default=None,
                        help="AlexNet-style width (1.0 = the book's; default: the cifar_cnn asset's offline width)")
    parser.add_argument("--lake", default=None, help="lake root holding the prepared dataset (default: a temp dir)")
    args = parser.parse_args()

    import cnn_pipelines  # noqa: F401  (TensorFlow settings of the project: oneDNN kernels)
    import keras
    import tensorflow as tf
    import tensorflow_datasets as tfds
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from cnn_pipelines.vision.datasets.catalog import (
        as_training_dataset, available_datasets, load_numpy, network_input, prepare,
    )
    from cnn_pipelines.vision.models.architectures import alexnet_style, compile_classifier
    from cnn_pipelines.vision.models.catalog import CIFAR_WIDTH_OFFLINE
    from cnn_pipelines.vision.settings import vision_settings

    tfds.disable_progress_bar()
    args.width = CIFAR_WIDTH_OFFLINE if args.width is None else args.width
    lake_root = args.lake or tempfile.mkdtemp(prefix="vision-bench-")
    s = vision_settings({"CNN_LAKE_ROOT": lake_root})
    spec = available_datasets(s)[args.dataset]
    prepare(spec, s)

    def book_arrays(split: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The book's arrays: float32 in [0, 1], made 32x32x3 once (like CIFAR-10's) the way our cache does."""
        images, labels = load_numpy(spec, s, split, limit=limit)
        return network_input(tf.constant(images), 32, 3).numpy().astype(np.float32) / 255.0, labels

    x, y = book_arrays("train", args.train)
    x_test, y_test = book_arrays("test", args.test)

    keras.utils.set_random_seed(0)
    reference = compile_classifier(alexnet_style((32, 32, 3), 10, args.width, augment=False), "adam", 1e-3)
    datagen = ImageDataGenerator(width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True)
    flow = datagen.flow(x, y, batch_size=32, seed=0)

    keras.utils.set_random_seed(0)
    ours = compile_classifier(alexnet_style((32, 32, 3), 10, args.width, augment=True), "adam", 1e-3,
                              steps_per_execution=8)
    train_ds = as_training_dataset(spec, s, f"train[:{args.train}]", 128, shuffle=True, image_size=32, channels=3)

    ref_s, our_s = [], []
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        reference.fit(flow, steps_per_epoch=int(np.ceil(len(x) / 32)), epochs=1, verbose=0)
        ref_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours.fit(train_ds, epochs=1, verbose=0, shuffle=False)
        our_s.append(time.perf_counter() - t0)
        print(f"epoch {epoch + 1}: book {len(x) / ref_s[-1]:,.0f} images/s, ours {len(x) / our_s[-1]:,.0f} images/s",
              flush=True)
    timed = slice(1, None) if args.epochs > 1 else slice(None)
    ref_ips = len(x) * len(ref_s[timed]) / sum(ref_s[timed])
    our_ips = len(x) * len(our_s[timed]) / sum(our_s[timed])
    ref_acc = float(reference.evaluate(x_test, y_test, batch_size=1024, verbose=0)[1])
    our_acc = float(ours.evaluate(x_test, y_test, batch_size=1024, verbose=0)[1])
    print(f"test accuracy after {args.epochs} epochs on {len(y_test):,} images: book {ref_acc:.4f}, ours {our_acc:.4f}")
    print(json.dumps({"ratio": round(our_ips / ref_ips, 2), "images_per_s": round(our_ips, 1),
                      "reference_images_per_s": round(ref_ips, 1), "accuracy": round(our_acc, 4),
                      "reference_accuracy": round(ref_acc, 4), "dataset": args.dataset, "train": len(x),
                      "epochs": args.epochs, "width": args.width, "cpu": cpu_name()}))
    if args.lake is None:
        shutil.rmtree(lake_root, ignore_errors=True)


if __name__ == "__main__":
    main()
