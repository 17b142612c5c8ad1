"""Pictures and tables for the vision assets' metadata: sample grids, learning curves, confusion matrices,
the worst mistakes, and filters with their activation maps. Sized to be read on a 1600 px screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from cnn_pipelines.plots import plt, png_bytes


def _show(ax, image: np.ndarray, cmap: str = "gray_r") -> None:
    """One image without ticks; grey images dark on light (ink on paper) unless ``cmap`` says otherwise."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap=cmap if img.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(images: np.ndarray, labels: np.ndarray, names: list[str], per_class: int = 8,
                title: str = "") -> bytes:
    """One row per class, ``per_class`` images each, the class name on the left."""
    classes = range(len(names))
    fig, axes = plt.subplots(len(names), per_class, figsize=(1.1 * per_class + 1.6, 1.1 * len(names) + 0.6),
                             squeeze=False)
    for r in classes:
        idx = np.flatnonzero(labels == r)[:per_class]
        for c in range(per_class):
            ax = axes[r, c]
            if c < len(idx):
                _show(ax, images[idx[c]])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(names[r], rotation=0, ha="right", va="center", fontsize=11)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def class_balance(labels_by_split: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    """Images per class and split, with each class's share of its split."""
    rows = {}
    for split, labels in labels_by_split.items():
        counts = np.bincount(labels, minlength=len(names))
        rows[split] = counts
        rows[f"{split} %"] = np.round(100 * counts / max(1, counts.sum()), 1)
    return pd.DataFrame(rows, index=pd.Index(names, name="class"))


def learning_curves(epochs: pd.DataFrame, best_epoch: int, title: str) -> bytes:
    """Loss and accuracy per epoch, training vs validation, the chosen epoch marked."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, label in ((a1, "loss", "cross-entropy loss"), (a2, "accuracy", "accuracy")):
        ax.plot(epochs["epoch"], epochs[key], marker="o", label="training")
        ax.plot(epochs["epoch"], epochs[f"val_{key}"], marker="o", label="validation")
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"chosen epoch {best_epoch}")
        ax.set_xlabel("epoch", fontsize=11)
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
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if i == j else "black")
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
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        ax.axis("on")
        _show(ax, images[i])
        ax.set_title(f"true {names[labels[i]]}\npred {names[predicted[i]]} {confidence[i]:.0%}", fontsize=9,
                     color="firebrick")
    fig.suptitle(title or f"{len(order)} most confident mistakes", fontsize=13)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


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
    fig, axes = plt.subplots(2, k + 1, figsize=(3.2 * (k + 1), 6.4))
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
    return png_bytes(fig, dpi=90)
