"""The chapter's image networks as small Keras functions (Jansen, ML4T ch. 18, notebooks 01-03)."""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from keras import layers  # noqa: E402


def lenet5(input_shape: tuple[int, int, int], num_classes: int, shift: float | None = None) -> keras.Model:
    """LeNet-5 as in notebook 02: three 5x5 convolutions with average pooling, then dense 84 -> softmax.

    ``shift`` puts notebook 03's random shifts (no flips: digits are not mirror images) in front, for small
    training sets. The book compiles it with plain SGD at batch 32; the optimizer is ``compile_classifier``'s.
    """
    return keras.Sequential([
        keras.Input(input_shape),
        *([augmentation(shift, flip=False)] if shift else []),
        layers.Conv2D(6, 5, activation="relu", name="CONV1"),
        layers.AveragePooling2D(pool_size=2, strides=1, padding="valid", name="POOL1"),
        layers.Conv2D(16, 5, activation="tanh", name="CONV2"),
        layers.AveragePooling2D(pool_size=2, strides=2, name="POOL2"),
        layers.Conv2D(120, 5, activation="tanh", name="CONV3"),
        layers.Flatten(name="FLAT"),
        layers.Dense(84, activation="tanh", name="FC6"),
        layers.Dense(num_classes, activation="softmax", name="FC7"),
    ], name="lenet5")


def augmentation(shift: float = 0.1, flip: bool = True) -> keras.Sequential:
    """Notebook 03's augmentation (10 % shifts, horizontal flips) as Keras preprocessing layers: part of the
    model, active only while training, run inside the graph instead of a Python generator."""
    steps = [layers.RandomTranslation(shift, shift, fill_mode="nearest", name="SHIFT")]
    if flip:
        steps.append(layers.RandomFlip("horizontal", name="FLIP"))
    return keras.Sequential(steps, name="augmentation")


# Keras's default (0.99) needs hundreds of steps before the inference statistics settle; 0.9 settles within
# an epoch of a demo-sized run, and changes nothing once training is long.
BN_MOMENTUM = 0.9


def alexnet_style(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
                  augment: bool = True) -> keras.Model:
    """Notebook 03's AlexNet for 32x32 images: five convolutions (96, 256, 384, 384, 256 filters) with max
    pooling and batch normalization, two dense layers of 4,096, dropout 0.4, softmax.

    ``width`` scales every layer's filters and units (1.0 = the book's 21.5 million parameters); ``augment``
    puts the augmentation layers in front.
    """
    def w(n: int) -> int:
        return max(8, int(round(n * width)))

    return keras.Sequential([
        keras.Input(input_shape),
        *([augmentation()] if augment else []),
        layers.Conv2D(w(96), 3, strides=2, padding="same", activation="relu", name="CONV1"),
        layers.MaxPooling2D(pool_size=2, strides=2, name="POOL1"),
        layers.BatchNormalization(momentum=BN_MOMENTUM, name="NORM1"),
        layers.Conv2D(w(256), 5, padding="same", activation="relu", name="CONV2"),
        layers.MaxPooling2D(pool_size=3, strides=2, name="POOL2"),
        layers.BatchNormalization(momentum=BN_MOMENTUM, name="NORM2"),
        layers.Conv2D(w(384), 3, padding="same", activation="relu", name="CONV3"),
        layers.Conv2D(w(384), 3, padding="same", activation="relu", name="CONV4"),
        layers.Conv2D(w(256), 3, padding="same", activation="relu", name="CONV5"),
        layers.MaxPooling2D(pool_size=3, strides=2, name="POOL5"),
        layers.BatchNormalization(momentum=BN_MOMENTUM, name="NORM5"),
        layers.Flatten(name="FLAT"),
        layers.Dense(w(4096), activation="relu", name="FC1"),
        layers.Dropout(0.4, name="DROP1"),
        layers.Dense(w(4096), activation="relu", name="FC2"),
        layers.Dropout(0.4, name="DROP2"),
        layers.Dense(num_classes, activation="softmax", name="OUT"),
    ], name="alexnet_style")


def compile_classifier(model: keras.Model, optimizer: str, learning_rate: float,
                       steps_per_execution: int = 1) -> keras.Model:
    """Sparse categorical cross-entropy with accuracy, as in the book."""
    opt = {"sgd": lambda: keras.optimizers.SGD(learning_rate), "adam": lambda: keras.optimizers.Adam(learning_rate),
           "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate)}[optimizer]()
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution, jit_compile=False)
    return model


def edge_filters(size: int = 4) -> np.ndarray:
    """Notebook 01's hand-made filters, (size, size, 1, 4): a vertical edge (dark left, bright right), its
    negative, and the two horizontal counterparts."""
    half = size // 2
    vertical = np.hstack([-np.ones((size, half)), np.ones((size, size - half))])
    filters = np.stack([vertical, -vertical, vertical.T, -vertical.T])
    return filters.transpose(1, 2, 0)[:, :, None, :].astype(np.float32)


def filter_network(filters: np.ndarray, pool: int = 4) -> keras.Model:
    """One Conv2D layer whose kernels are the given filters (ReLU, no bias, not trained), then max pooling:
    the convolution and pooling outputs of notebook 01."""
    inp = keras.Input((None, None, filters.shape[2]))
    conv = layers.Conv2D(filters.shape[3], filters.shape[:2], activation="relu", use_bias=False, name="CONV")
    pooled = layers.MaxPooling2D(pool, name="POOL")
    c = conv(inp)
    model = keras.Model(inp, [c, pooled(c)], name="edge_filters")
    conv.set_weights([filters])
    conv.trainable = False
    return model
