"""Predictions with a Keras network, without ``model.predict``'s cost: it traces a new graph function for every
model object it sees (0.2 s, several times the prediction itself for a month of images), and the pipelines
predict with freshly loaded checkpoints all the time. Calling the network on batches needs no tracing."""

from __future__ import annotations

import keras
import numpy as np


def predict_batches(model: keras.Model, x, batch_size: int = 1024):
    """What ``model.predict(x, batch_size=batch_size)`` returns (an array, or a list/dict per output), computed
    by calling the network on batches in inference mode. ``x`` is an array or a list of arrays (several inputs)."""
    several = isinstance(x, (list, tuple))
    inputs = list(x) if several else [x]
    n = len(inputs[0])
    outs = []
    for i in range(0, max(n, 1), batch_size):
        batch = [a[i:i + batch_size] for a in inputs]
        out = model(batch if several else batch[0], training=False)
        outs.append(keras.tree.map_structure(keras.ops.convert_to_numpy, out))
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts), *outs)
