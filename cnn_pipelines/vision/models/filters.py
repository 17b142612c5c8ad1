"""Notebook 01's filter demo: hand-made edge filters as the kernels of a Conv2D layer, applied to a real
photo (scikit-learn's sample photo of a Chinese temple), with ReLU and max pooling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.storage.checkpoints import save_keras
from cnn_pipelines.vision.models.architectures import edge_filters, filter_network
from cnn_pipelines.inference import predict_batches

FILTER_LABELS = ["vertical edge, dark to bright", "vertical edge, bright to dark",
                 "horizontal edge, dark to bright", "horizontal edge, bright to dark"]


@dataclass
class FilterDemo:
    image: np.ndarray           # (h, w, 1) grey in [0, 1]
    image_source: str
    filters: np.ndarray         # (4, 4, 1, 4)
    conv: np.ndarray            # (h-3, w-3, 4) ReLU activations
    pooled: np.ndarray          # after 4x4 max pooling
    labels: list[str]
    stats: pd.DataFrame
    model_path: Path


def sample_photo(max_side: int = 320) -> tuple[np.ndarray, str]:
    """A real photo that ships with scikit-learn, in grey, downsampled so its longer side is <= max_side."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image("china.jpg").astype(np.float32) / 255.0
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    step = int(np.ceil(max(grey.shape) / max_side))
    return grey[::step, ::step, None], f"scikit-learn sample photo china.jpg ({rgb.shape[1]}x{rgb.shape[0]}), every {step}th pixel"


def run_filter_demo(out_dir: Path) -> FilterDemo:
    """Apply the filters, save the one-layer network (.keras) and the activations (.npz) under ``out_dir``."""
    image, source = sample_photo()
    filters = edge_filters()
    model = filter_network(filters)
    conv, pooled = (np.asarray(a)[0] for a in predict_batches(model, image[None]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = save_keras(model, out_dir / "edge_filters.keras")
    tmp_npz = out_dir / ".activations.tmp.npz"
    np.savez_compressed(tmp_npz, image=image, filters=filters, conv=conv, pooled=pooled)
    tmp_npz.replace(out_dir / "activations.npz")
    stats = pd.DataFrame({"filter": FILTER_LABELS, "active pixels %": (100 * (conv > 0).mean(axis=(0, 1))).round(1),
                          "mean activation": conv.mean(axis=(0, 1)).round(4),
                          "max activation": conv.max(axis=(0, 1)).round(3)})
    return FilterDemo(image, source, filters, conv, pooled, FILTER_LABELS, stats, path)
