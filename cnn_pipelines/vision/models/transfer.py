"""Transfer learning (notebooks 09-11): a pretrained convolutional backbone, its bottleneck features, a small
head trained on them, fine-tuning of the backbone's top block, and the same network trained from scratch.

A backbone is either ``keras.applications`` (VGG16, DenseNet201; ImageNet weights with network access, global
average pooling as in the book) or a checkpoint of one of our own models, cut after a convolution block and
flattened. Either way a bottleneck feature is one vector per image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnn_pipelines.vision.models.architectures import keras, layers
from cnn_pipelines.inference import predict_batches


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone comes from and how its inputs are scaled."""

    name: str                           # e.g. "vgg16", "fashion_mnist_cnn"
    title: str
    image_size: int                     # square input side
    preprocess: str                     # "unit" (x / 255), "vgg16" or "densenet" (keras.applications' own)
    top_block: str                      # first layer of the block unfrozen for fine-tuning
    application: str | None = None      # keras.applications class; None = a checkpoint of model `checkpoint_of`
    weights: str | None = "imagenet"    # for applications; None = random initialization (tests, from scratch)
    checkpoint_of: str | None = None    # model asset whose best epoch supplies the layers
    last_layer: str | None = None       # checkpoint backbones: the last layer kept
    pooling: str = "avg"                # features: "avg" (global average pooling) or "flatten" (keeps where)
    scratch: Callable | None = None     # checkpoint backbones: (input_shape, n_classes) -> the untrained network
    channels: int = 3                   # image channels the backbone takes (1: grey, as the LeNet-5 checkpoints)


def keras_backbone(spec: BackboneSpec, weights: str | None) -> keras.Model:
    """``keras.applications`` network without its classifier, global-average pooled."""
    app = getattr(keras.applications, spec.application)
    return app(include_top=False, weights=weights, input_shape=(spec.image_size, spec.image_size, 3), pooling="avg")


def cut_backbone(network: keras.Model, last_layer: str, pooling: str = "avg") -> keras.Model:
    """A trained Sequential network's layers up to ``last_layer`` (augmentation skipped: it only acts while
    training), global-average pooled or flattened. The layers, and so their weights, are shared with
    ``network``."""
    inp = keras.Input(network.input_shape[1:], name="image")
    x = inp
    for layer in network.layers:
        if layer.name == "augmentation":
            continue
        x = layer(x)
        if layer.name == last_layer:
            break
    else:
        raise ValueError(f"{network.name} has no layer {last_layer!r}: {[la.name for la in network.layers]}")
    if pooling not in ("avg", "flatten"):
        raise ValueError(f"pooling must be 'avg' or 'flatten', got {pooling!r}")
    pool = layers.GlobalAveragePooling2D(name="POOL") if pooling == "avg" else layers.Flatten(name="FEATURES")
    return keras.Model(inp, pool(x), name="backbone")


def build_backbone(spec: BackboneSpec, source: keras.Model | None = None, pretrained: bool = True) -> keras.Model:
    """The backbone: pretrained (ImageNet weights, or ``source``'s trained layers), or with random weights for
    training from scratch (same layers)."""
    if spec.application is not None:
        return keras_backbone(spec, spec.weights if pretrained else None)
    if pretrained:
        if source is None:
            raise ValueError(f"backbone {spec.name} is cut from a checkpoint of {spec.checkpoint_of}; none given")
        return cut_backbone(source, spec.last_layer, spec.pooling)
    return cut_backbone(spec.scratch((spec.image_size, spec.image_size, spec.channels), 10), spec.last_layer,
                        spec.pooling)


def preprocess(images, kind: str):
    """uint8 (n, h, w, c) images (NumPy or tensor) as the backbone expects them, float32."""
    x = keras.ops.cast(images, "float32")
    if kind == "unit":
        return x / 255.0
    if kind == "vgg16":
        return keras.applications.vgg16.preprocess_input(x)
    if kind == "densenet":
        return keras.applications.densenet.preprocess_input(x)
    raise ValueError(f"preprocess must be 'unit', 'vgg16' or 'densenet', got {kind!r}")


def extract_features(backbone: keras.Model, images: np.ndarray, kind: str, batch_size: int = 256) -> np.ndarray:
    """Bottleneck features (n, d) float32 of uint8 images, in batches (never all images as floats at once)."""
    out = [predict_batches(backbone, preprocess(images[i:i + batch_size], kind), batch_size)
           for i in range(0, len(images), batch_size)]
    return np.concatenate([np.asarray(o) for o in out]).astype(np.float32) if out else np.zeros((0, backbone.output_shape[-1]), np.float32)


def classification_head(n_features: int, n_classes: int, units: int = 256, dropout: float = 0.5) -> keras.Model:
    """Notebook 09's top model on bottleneck features: dense 256 with ReLU, dropout 0.5, softmax."""
    return keras.Sequential([
        keras.Input((n_features,), name="features"),
        layers.Dense(units, activation="relu", name="HEAD_FC"),
        layers.Dropout(dropout, name="HEAD_DROP"),
        layers.Dense(n_classes, activation="softmax", name="HEAD_OUT"),
    ], name="head")


def stacked(backbone: keras.Model, head: keras.Model, top_block: str | None) -> keras.Model:
    """Backbone then head as one network. ``top_block``: layers from it on are trainable, those below frozen,
    and every batch normalization frozen too, so it stays in inference mode and the small target set cannot
    wreck its statistics (Keras 3.15 ignores ``training=False`` on a nested model's call: measured, the moving
    averages moved). None: everything trains (from scratch)."""
    inp = keras.Input(backbone.input_shape[1:], name="image")
    backbone.trainable = True
    if top_block is not None:
        names = [la.name for la in backbone.layers]
        if top_block not in names:
            raise ValueError(f"backbone has no layer {top_block!r} to unfreeze from: {names}")
        start = names.index(top_block)
        for i, layer in enumerate(backbone.layers):
            layer.trainable = i >= start and not isinstance(layer, layers.BatchNormalization)
    return keras.Model(inp, head(backbone(inp)), name="transfer" if top_block else "scratch")


def nested_subsets(labels: np.ndarray, sizes: list[int], seed: int = 0) -> dict[int, np.ndarray]:
    """Class-balanced training subsets, each size's contained in the next: the images are dealt class by class
    in a seeded random order and the first ``n`` taken. A size above the number of images means all of them."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = [idx[i] for i in range(max(len(p) for p in per_class)) for idx in per_class if i < len(idx)]
    order = np.asarray(order)
    return {n: np.sort(order[:min(n, len(order))]) for n in sizes}


def budget_split(idx: np.ndarray, labels: np.ndarray, val_share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A labelled budget ``idx`` split into (training, validation) indices, class by class: about ``val_share`` of
    each class's images (at least one where the class has two or more) choose the epoch, the rest train. So a
    learning-curve point of n labelled images uses n labels in all, not n plus a separate validation set."""
    train, val = [], []
    for c in np.unique(labels[idx]):
        members = idx[labels[idx] == c]
        k = 0 if len(members) < 2 else max(1, int(round(val_share * len(members))))
        val.append(members[len(members) - k:])
        train.append(members[:len(members) - k])
    return np.sort(np.concatenate(train)).astype(int), np.sort(np.concatenate(val)).astype(int)
