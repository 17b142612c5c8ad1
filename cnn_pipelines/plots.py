"""Figures for asset metadata: rendered headless to PNG and embedded in Markdown."""

from __future__ import annotations

import base64
import io

import math

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams.update({"axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
                            "legend.fontsize": 8, "figure.titlesize": 11})
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


# The UI's metadata dialog shows about 1,100 px of a picture on a 1600 px screen: every figure is rendered about
# 1,000 px wide, whatever its size in inches, so its fonts keep their size relative to the picture.
TARGET_WIDTH_PX = 1000


def png_bytes(fig, dpi: int | None = None) -> bytes:
    """The figure as PNG, ~1,000 px wide unless ``dpi`` is given; closes it."""
    if dpi is None:
        dpi = int(min(160, max(72, TARGET_WIDTH_PX / fig.get_figwidth())))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def photo_bytes(fig, dpi: int | None = None, quality: int = 82) -> bytes:
    """The figure as JPEG: grids of photos and digits compress 4-8x better than PNG, and every picture is
    stored in Dagster's event history (twice, with SQLite storage) each time the asset materializes."""
    from PIL import Image

    png = Image.open(io.BytesIO(png_bytes(fig, dpi))).convert("RGB")
    buf = io.BytesIO()
    png.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def markdown_image(image: bytes, alt: str) -> str:
    """Markdown embedding a PNG or JPEG as a data URI (shown by the Dagster UI)."""
    mime = "image/jpeg" if image[:2] == b"\xff\xd8" else "image/png"
    return f"![{alt}](data:{mime};base64,{base64.b64encode(image).decode()})"


def heatmap(matrix: pd.DataFrame, title: str, vmin: float = -1, vmax: float = 1, cmap: str = "RdBu_r") -> bytes:
    fig, ax = plt.subplots(figsize=(0.38 * len(matrix.columns) + 2, 0.34 * len(matrix.index) + 1.5))
    im = ax.imshow(matrix.to_numpy(dtype=float), vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return png_bytes(fig)


def line_plot(series: pd.Series, title: str, ylabel: str) -> bytes:
    import matplotlib.dates as mdates

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(pd.to_datetime(series.index), np.asarray(series, dtype=float), lw=1)
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return png_bytes(fig)


def rounded(value: float, digits: int = 4, missing: str = "n/a") -> float | str:
    """A metadata number rounded to what it means; NaN/inf become ``missing`` (say why in it)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else missing


def table_markdown(frame: pd.DataFrame, digits: int = 4, note: str = "not defined for this sample") -> str:
    """A metadata table rounded to ``digits``; missing cells read "n/a", explained under the table."""
    numeric = frame.select_dtypes("number").columns
    shown = frame.copy().astype(object)
    shown[numeric] = frame[numeric].round(digits).astype(object)
    missing = frame.isna()
    shown = shown.where(~missing, "n/a")
    return shown.to_markdown() + (f"\n\nn/a: {note}" if missing.any().any() else "")
