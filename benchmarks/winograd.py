"""Convolution-algorithm benchmark: can Winograd beat oneDNN's direct convolution for the CNN's 16->32 layer?

Winograd F(2x2, 3x3) needs 2.6x fewer multiplications here (only the 7x7 tiles the 2x2 max-pool reads are
computed, and the pool becomes a max over each tile's four outputs), so it is the one algorithm that could lift
training past the direct convolution's FLOP ceiling. Built from TensorFlow ops, it is checked against the direct
layer and timed forward and with gradients, in the same run.

    .venv/bin/python benchmarks/winograd.py --batch 256

Prints a table; the last line is a JSON object with ratio (direct time / Winograd time, with gradients; above 1
means Winograd is faster), forward_ratio, max_abs_diff and max_rel_grad_diff.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

import cnn_pipelines  # noqa: F401  (sets TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow starts, as training does)
import tensorflow as tf

# Winograd F(2x2, 3x3) transforms (Lavin & Gray 2016): input B^T, filter G, output A^T.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


def direct_layer(x: tf.Tensor, w: tf.Variable, b: tf.Variable) -> tf.Tensor:
    """The network's layer as Keras runs it: 'same' 3x3 convolution, bias, ReLU, 2x2 max-pool."""
    return tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + b), 2, 2, "VALID")


def winograd_layer(x: tf.Tensor, w: tf.Variable, b: tf.Variable) -> tf.Tensor:
    """The same layer through Winograd F(2x2, 3x3), computing only the 7x7 output tiles the pool reads.

    max(relu(y + b)) == relu(max(y) + b), so the pool is a max over each tile's 2x2 outputs before bias and ReLU.
    """
    n, cin, cout = tf.shape(x)[0], x.shape[-1], w.shape[-1]
    xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])               # 17x17; tiles start at 0, 2, ..., 12
    rows = [xp[:, i:i + 14:2] for i in range(4)]                    # 4 x (n, 7, 17, cin)
    rows_t = [sum(float(B_T[a, i]) * rows[i] for i in range(4) if B_T[a, i]) for a in range(4)]
    v = []
    for r in rows_t:
        cols = [r[:, :, j:j + 14:2] for j in range(4)]              # 4 x (n, 7, 7, cin)
        v += [sum(float(B_T[c, j]) * cols[j] for j in range(4) if B_T[c, j]) for c in range(4)]
    v = tf.reshape(tf.stack(v, 0), [16, -1, cin])                   # (16, n*49, cin)
    u = tf.reshape(tf.einsum("ai,ijck,bj->abck", G, w, G), [16, cin, cout])
    m = tf.matmul(v, u)                                             # 16 GEMMs (n*49, cin) x (cin, cout)
    y = tf.matmul(np.einsum("pa,qb->pqab", A_T, A_T).reshape(4, 16), tf.reshape(m, [16, -1]))
    return tf.nn.relu(tf.reshape(tf.reduce_max(y, 0), [n, 7, 7, cout]) + b)


def with_gradients(layer: Callable, w: tf.Variable, b: tf.Variable) -> Callable:
    """A training step's work for the layer: forward, then gradients for its input and weights."""
    def step(x: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x, w, b)))
        return tape.gradient(loss, [x, w, b])
    return step


def best_ms(fn: Callable, x: tf.Tensor, repeats: int = 5, calls: int = 20) -> float:
    """Fastest mean time per call over several rounds (this VM's speed drifts by up to half)."""
    tf.nest.map_structure(np.asarray, fn(x))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            out = fn(x)
        tf.nest.map_structure(np.asarray, out)
        times.append((time.perf_counter() - t) / calls)
    return 1e3 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = tf.constant(np.maximum(rng.standard_normal((args.batch, 15, 15, 16)), 0).astype(np.float32))
    w = tf.Variable(rng.standard_normal((3, 3, 16, 32)).astype(np.float32) * 0.1)
    b = tf.Variable(rng.standard_normal(32).astype(np.float32) * 0.1)

    fwd = {name: tf.function(lambda x, f=f: f(x, w, b)) for name, f in
           [("direct", direct_layer), ("winograd", winograd_layer)]}
    grad = {name: tf.function(with_gradients(f, w, b)) for name, f in
            [("direct", direct_layer), ("winograd", winograd_layer)]}
    diff = float(tf.reduce_max(tf.abs(fwd["direct"](x) - fwd["winograd"](x))))
    gdiff = max(float(tf.reduce_max(tf.abs(a - c)) / tf.reduce_max(tf.abs(a)))  # relative to the largest
                for a, c in zip(grad["direct"](x), grad["winograd"](x)))

    ms = {}
    for _ in range(2):  # alternate, keep each one's best
        for kind, fns in (("forward", fwd), ("with gradients", grad)):
            for name, fn in fns.items():
                ms[(kind, name)] = min(ms.get((kind, name), np.inf), best_ms(fn, x))
    mults = {"direct": 15 * 15 * 32 * 16 * 9, "winograd": 16 * 49 * 16 * 32}
    print(f"conv 16->32 + ReLU + 2x2 max-pool, batch {args.batch}; max |difference| forward {diff:.1e}, "
          f"gradients {gdiff:.1e} (relative)")
    print(f"{'':10s} {'mults/sample':>13s} {'forward ms':>11s} {'with gradients ms':>18s}")
    for name in ("direct", "winograd"):
        print(f"{name:10s} {mults[name]:13,d} {ms[('forward', name)]:11.2f} {ms[('with gradients', name)]:18.2f}")
    result = {
        "ratio": round(ms[("with gradients", "direct")] / ms[("with gradients", "winograd")], 3),
        "forward_ratio": round(ms[("forward", "direct")] / ms[("forward", "winograd")], 3),
        "direct_ms": round(ms[("with gradients", "direct")], 2),
        "winograd_ms": round(ms[("with gradients", "winograd")], 2),
        "multiplication_ratio": round(mults["direct"] / mults["winograd"], 2),
        "max_abs_diff": diff, "max_rel_grad_diff": gdiff, "batch": args.batch,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
