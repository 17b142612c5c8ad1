"""The multi-digit house-number reader (notebook 13, after Goodfellow et al. 2014): one convolutional trunk,
one softmax for the number's length and one per digit position (11 classes: 0-9 and "no digit")."""

from __future__ import annotations

import numpy as np

from cnn_pipelines.inference import predict_batches
from cnn_pipelines.vision.datasets.house_numbers import BLANK, MAX_DIGITS
from cnn_pipelines.vision.models.architectures import BN_MOMENTUM, keras, layers

OUTPUTS = ("length", *(f"digit_{i + 1}" for i in range(MAX_DIGITS)))


def multi_digit_cnn(input_shape: tuple[int, int, int], width: int = 16, dense: tuple[int, int] = (256, 128),
                    shift: float = 0.0) -> keras.Model:
    """Three blocks of two 3x3 convolutions (``width``, 2x, 4x filters) with batch normalization and max
    pooling, then notebook 13's head (batch-normalized dense 256 and 128) and six softmax outputs: ``length``
    (1..MAX_DIGITS digits) and ``digit_1``..``digit_5`` (class 10 = no digit at that position).

    The book puts VGG16's ImageNet features under the same head; ``shift`` puts random shifts in front (as
    Goodfellow et al.'s random crops).
    """
    inp = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255.0, name="SCALE")(inp)
    if shift:
        x = layers.RandomTranslation(shift, shift, fill_mode="nearest", name="SHIFT")(x)
    for block, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"CONV{block}_{conv}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"NORM{block}_{conv}")(x)
            x = layers.Activation("relu", name=f"RELU{block}_{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"POOL{block}")(x)
    x = layers.Flatten(name="FLAT")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="NORM_FLAT")(x)
    for i, units in enumerate(dense, start=1):
        x = layers.Dense(units, use_bias=False, name=f"FC{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"NORM_FC{i}")(x)
        x = layers.Activation("relu", name=f"RELU_FC{i}")(x)
    outputs = [layers.Dense(MAX_DIGITS, activation="softmax", name="length")(x)]
    outputs += [layers.Dense(BLANK + 1, activation="softmax", name=name)(x) for name in OUTPUTS[1:]]
    return keras.Model(inp, outputs, name="multi_digit_cnn")


def compile_reader(model: keras.Model, learning_rate: float, steps_per_execution: int = 8) -> keras.Model:
    """Sparse cross-entropy summed over the six outputs, accuracy per output."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={k: "sparse_categorical_crossentropy" for k in OUTPUTS},
                  metrics={k: ["accuracy"] for k in OUTPUTS}, steps_per_execution=steps_per_execution,
                  jit_compile=False)
    return model


def targets_dict(y: np.ndarray) -> dict[str, np.ndarray]:
    """(n, 6) targets as the model's named outputs."""
    return {k: y[:, i] for i, k in enumerate(OUTPUTS)}


def predict_numbers(model: keras.Model, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Predicted targets (n, 6) and the probability of each whole prediction (product of the used outputs')."""
    probs = predict_batches(model, images, batch_size)
    probs = dict(zip(model.output_names, probs)) if isinstance(probs, list) else probs
    pred = np.stack([probs[k].argmax(axis=1) for k in OUTPUTS], axis=1)
    conf = probs["length"].max(axis=1)
    for i, k in enumerate(OUTPUTS[1:]):
        used = pred[:, 0] >= i
        conf = conf * np.where(used, probs[k].max(axis=1), 1.0)
    return pred, conf


def sequence_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """``sequence_accuracy``: share of numbers read fully right (length and every digit); ``digit_accuracy``:
    share of true digits read right at their position; ``length_accuracy``."""
    n = y[:, 0] + 1
    used = np.arange(MAX_DIGITS)[None, :] < n[:, None]
    digits_right = (pred[:, 1:] == y[:, 1:]) | ~used
    whole = (pred[:, 0] == y[:, 0]) & digits_right.all(axis=1)
    return {"sequence_accuracy": float(whole.mean()),
            "digit_accuracy": float(((pred[:, 1:] == y[:, 1:]) & used).sum() / used.sum()),
            "length_accuracy": float((pred[:, 0] == y[:, 0]).mean())}
