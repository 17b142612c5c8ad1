"""Figures for asset metadata: rendered headless to PNG and embedded in Markdown."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def png_bytes(fig, dpi: int = 60) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown embedding a PNG as a data URI (shown inline by the Dagster UI)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def heatmap(matrix: pd.DataFrame, title: str, vmin: float = -1, vmax: float = 1, cmap: str = "RdBu_r") -> bytes:
    fig, ax = plt.subplots(figsize=(0.38 * len(matrix.columns) + 2, 0.34 * len(matrix.index) + 1.5))
    im = ax.imshow(matrix.to_numpy(dtype=float), vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return png_bytes(fig)


def line_plot(series: pd.Series, title: str, ylabel: str) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.plot(pd.to_datetime(series.index), np.asarray(series, dtype=float), lw=1)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(alpha=0.3)
    return png_bytes(fig)
