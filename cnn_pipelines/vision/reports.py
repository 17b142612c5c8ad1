"""Pictures and tables for the vision assets' metadata: sample grids, learning curves, confusion matrices,
the worst mistakes, and filters with their activation maps. Sized to be read on a 1600 px screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from cnn_pipelines.plots import photo_bytes, plt, png_bytes


def _show(ax, image: np.ndarray, cmap: str = "gray_r") -> None:
    """One image without ticks; grey images dark on light (ink on paper) unless ``cmap`` says otherwise."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap=cmap if img.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _unit(images: np.ndarray) -> np.ndarray:
    """Images as floats in [0, 1] (uint8 divided by 255, anything else scaled by its range), channels last;
    a single channel is dropped."""
    x = np.asarray(images)
    x = x / 255.0 if x.dtype == np.uint8 else (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
    return x[..., 0] if x.ndim == 4 and x.shape[-1] == 1 else x


def sample_grid(images: np.ndarray, labels: np.ndarray, names: list[str], per_class: int = 8,
                title: str = "") -> bytes:
    """One row per class, ``per_class`` images each, the class name on the left. Drawn as one mosaic (one axes,
    not one per image: 80 axes took a second to lay out)."""
    x = _unit(images)
    h, w = x.shape[1:3]
    grey, pad = x.ndim == 3, 2
    cell_h, cell_w = h + pad, w + pad
    mosaic = np.full((len(names) * cell_h, per_class * cell_w, *(() if grey else (x.shape[-1],))),
                     0.0 if grey else 1.0)  # white around the cells: gray_r draws 0 white, RGB 1 white
    for r in range(len(names)):
        for c, i in enumerate(np.flatnonzero(labels == r)[:per_class]):
            mosaic[r * cell_h: r * cell_h + h, c * cell_w: c * cell_w + w] = x[i]
    fig, ax = plt.subplots(figsize=(1.1 * per_class + 1.6, 1.1 * len(names) + 0.6))
    ax.imshow(mosaic, cmap="gray_r" if grey else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([r * cell_h + h / 2 for r in range(len(names))], names, fontsize=11)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return photo_bytes(fig, dpi=90)


def class_balance(labels_by_split: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    """Images per class and split, with each class's share of its split."""
    rows = {}
    for split, labels in labels_by_split.items():
        counts = np.bincount(labels, minlength=len(names))
        rows[split] = counts
        rows[f"{split} %"] = np.round(100 * counts / max(1, counts.sum()), 1)
    return pd.DataFrame(rows, index=pd.Index(names, name="class"))


def learning_curves(epochs: pd.DataFrame, best_epoch: int, title: str) -> bytes:
    """Loss and accuracy (in %, as every page shows it) per epoch, training vs validation, the chosen epoch
    marked; whole epochs on the x axis, even for a run of one (it read 0.945 ... 1.050)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, label, scale in ((a1, "loss", "cross-entropy loss", 1), (a2, "accuracy", "accuracy (%)", 100)):
        ax.plot(epochs["epoch"], scale * epochs[key], marker="o", label="training")
        ax.plot(epochs["epoch"], scale * epochs[f"val_{key}"], marker="o", label="validation")
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"chosen epoch {best_epoch}")
        ax.set_xlabel("epoch", fontsize=11)
        if 0 < len(epochs) <= 20:  # few epochs: a tick on each (the integer locator falls back to fractions)
            ax.set_xticks(epochs["epoch"].astype(int).tolist())
            ax.set_xlim(epochs["epoch"].min() - 0.5, epochs["epoch"].max() + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label, fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=10)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def confusion(labels: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), int)
    np.add.at(m, (labels, predicted), 1)
    return m


def confusion_plot(matrix: np.ndarray, names: list[str], title: str) -> bytes:
    """Counts, true class in rows, predicted in columns; the diagonal is right."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(0.75 * n + 3, 0.65 * n + 2))
    shade = np.log1p(matrix)
    ax.imshow(shade, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:  # white on the dark half of the colour scale, wherever the cell is
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if shade[i, j] > 0.6 * shade.max() else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=10)
    ax.set_yticks(range(n), names, fontsize=10)
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def worst_mistakes(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                   names: list[str], k: int = 24, title: str = "") -> bytes:
    """The ``k`` wrong predictions made with the highest confidence, each with true and predicted class."""
    wrong = np.flatnonzero(labels != predicted)
    order = wrong[np.argsort(-confidence[wrong])][:k]
    cols = 8
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 1.9 * rows), squeeze=False)  # fits the UI's dialog
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        ax.axis("on")
        _show(ax, images[i])
        ax.set_title(f"true {names[labels[i]]}\npred {names[predicted[i]]} {confidence[i]:.0%}", fontsize=9,
                     color="firebrick")
    fig.suptitle(title or f"{len(order)} most confident mistakes", fontsize=13)
    fig.tight_layout()
    return photo_bytes(fig, dpi=90)


def filters_plot(filters: np.ndarray) -> bytes:
    """Each (h, w, 1, k) filter with its values written in the cells."""
    k = filters.shape[-1]
    fig, axes = plt.subplots(1, k, figsize=(2.6 * k, 2.9))
    for i, ax in enumerate(np.atleast_1d(axes)):
        f = filters[:, :, 0, i]
        ax.imshow(f, cmap="gray", vmin=-1, vmax=1)
        for (r, c), v in np.ndenumerate(f):
            ax.text(c, r, f"{v:+.0f}", ha="center", va="center", fontsize=10, color="red")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"filter {i + 1}", fontsize=11)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def activation_maps(image: np.ndarray, conv: np.ndarray, pooled: np.ndarray, labels: list[str]) -> bytes:
    """The input, then per filter its ReLU activation map (top row) and after max pooling (bottom row)."""
    k = conv.shape[-1]
    fig, axes = plt.subplots(2, k + 1, figsize=(2.5 * (k + 1), 5.4))  # fits the UI's dialog
    _show(axes[0, 0], image, cmap="gray")
    axes[0, 0].set_title(f"input (grey) {image.shape[0]}x{image.shape[1]}", fontsize=10)
    axes[1, 0].axis("off")
    for i in range(k):
        for row, (maps, what) in enumerate(((conv, "convolution + ReLU"), (pooled, "max pooled"))):
            ax = axes[row, i + 1]
            ax.imshow(maps[..., i], cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{labels[i]}\n{what} {maps.shape[0]}x{maps.shape[1]}", fontsize=10)
    fig.tight_layout()
    return photo_bytes(fig, dpi=90)


def feature_scatter(features: np.ndarray, labels: np.ndarray, names: list[str], title: str,
                    max_points: int = 3000) -> bytes:
    """Images as points on the first two principal components of their bottleneck features, one colour per
    class: separated clouds mean a linear head has an easy job."""
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(features))[:max_points]
    x = features[idx] - features[idx].mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(9, 7))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for c, name in enumerate(names):
        m = labels[idx] == c
        ax.scatter(xy[m, 0], xy[m, 1], s=8, alpha=0.6, color=cmap(c % cmap.N), label=name)
    ax.set_xlabel("principal component 1", fontsize=11)
    ax.set_ylabel("principal component 2", fontsize=11)
    ax.legend(fontsize=10, markerscale=2.5, loc="best", ncol=2 if len(names) > 6 else 1)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def seeds_text(seeds: int) -> str:
    """How many seeds a learning-curve figure averages, as the page, the picture and make run's lines say it."""
    return "one seed" if seeds == 1 else f"mean of {seeds} seeds"


def transfer_curve(table: pd.DataFrame, n_all: int, title: str) -> bytes:
    """Test accuracy against labelled images (log scale), one line per method (transfer: head on frozen
    features; fine-tuned; from scratch) at the seeds' mean, shaded over mean ± one standard deviation."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    styles = {"transfer": ("o", "C0", "transfer: head on frozen backbone features"),
              "fine_tuned": ("^", "green", "fine-tuned: head + backbone's top block"),
              "scratch": ("s", "C1", "same network from scratch")}
    n = table.index.to_numpy()
    for method, (marker, color, label) in styles.items():
        if method not in table or table[method].isna().all():
            continue
        mean, sd = 100 * table[method].to_numpy(float), 100 * table[f"{method}_sd"].to_numpy(float)
        ax.plot(n, mean, marker=marker, lw=2, color=color, label=label)
        ax.fill_between(n, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)  # no band where one seed (NaN)
    for x, t, sc in zip(n, table["transfer"], table["scratch"]):
        up = 1 if t >= sc else -1  # the higher value's label above its point, the lower one's below
        ax.annotate(f"{t:.1%}", (x, 100 * t), textcoords="offset points", xytext=(0, 11 * up - 4), ha="center",
                    fontsize=9, color="C0")
        ax.annotate(f"{sc:.1%}", (x, 100 * sc), textcoords="offset points", xytext=(0, -11 * up - 4), ha="center",
                    fontsize=9, color="C1")
    seeds = int(table["seeds"].max())
    ax.set_xscale("log")
    ax.set_xlim(n.min() / 1.5, n.max() * 1.5)  # room for the first and last points' labels inside the axes
    low, high = ax.get_ylim()
    ax.set_ylim(low - 0.06 * (high - low), high + 0.06 * (high - low))  # and for the lowest and highest
    ax.set_xticks(list(n), [f"{int(v):,}" + (" (all)" if v >= n_all else "") for v in n])
    ax.minorticks_off()
    ax.set_xlabel("labelled target images, validation included (log scale)", fontsize=11)
    ax.set_ylabel("test accuracy (%)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=10, loc="lower right",
              title=seeds_text(seeds) + (", band: ± 1 s.d." + (" (all images: one run)" if n.max() >= n_all else "")
                                          if seeds > 1 else ""),
              title_fontsize=9)
    ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def house_number_examples(images: np.ndarray, truth: list[str], predicted: list[str], confidence: np.ndarray,
                          title: str, cols: int = 6) -> bytes:
    """Crops with the true and the predicted number (green when fully right, red otherwise)."""
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 1.7 * rows + 0.6), squeeze=False)  # fits the UI's dialog
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, t, p, c in zip(axes.ravel(), images, truth, predicted, confidence):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(f"true {t}\nread {p} ({c:.0%})", fontsize=10, color="darkgreen" if t == p else "firebrick")
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return photo_bytes(fig, dpi=90)


def raw_with_boxes(folder, k: int, title: str, cols: int = 4) -> bytes:
    """The first ``k`` images of a format-1 folder with the boxes and labels its digitStruct.mat holds."""
    from pathlib import Path

    from matplotlib.patches import Rectangle
    from PIL import Image

    from cnn_pipelines.vision.datasets.house_numbers import read_digit_struct

    folder = Path(folder)
    boxes = read_digit_struct(folder / "digitStruct.mat")
    names = list(dict.fromkeys(boxes["name"]))[:k]
    rows = max(1, int(np.ceil(len(names) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.1 * rows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        ax.imshow(np.asarray(Image.open(folder / name).convert("RGB")))
        for _, b in boxes[boxes["name"] == name].iterrows():
            ax.add_patch(Rectangle((b["left"], b["top"]), b["width"], b["height"], fill=False, ec="yellow", lw=1.5))
            ax.text(b["left"], b["top"] - 1, str(b["label"]), color="yellow", fontsize=9, va="bottom",
                    bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0})
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return photo_bytes(fig, dpi=90)
