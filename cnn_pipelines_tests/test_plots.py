"""Pictures for asset metadata: plots as palette PNGs that keep their colours exact, photo grids as WebP, both
embedded with the right MIME type (every picture is kept in Dagster's event history, so bytes count)."""

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnn_pipelines.plots import markdown_image, photo_bytes, plt, png_bytes


def _line_plot():
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.linspace(0, 10, 400)
    for k in range(4):
        ax.plot(x, np.sin(x + k), label=f"model {k}")
    ax.set_xlabel("day")
    ax.set_ylabel("net return")
    ax.legend()
    return fig


def test_plots_are_palette_pngs_with_exact_colours_and_a_fraction_of_the_bytes():
    fig = _line_plot()
    fig.canvas.draw()
    full = io.BytesIO()
    fig.savefig(full, format="png", dpi=125, bbox_inches="tight")
    png = png_bytes(fig)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "P" and 800 <= image.width <= 1100
    colours = {rgb for _, rgb in image.convert("RGB").getcolors(256)}
    assert (255, 255, 255) in colours                                    # the background stays white
    assert (31, 119, 180) in colours and (255, 127, 14) in colours       # matplotlib's first two line colours
    assert len(png) < len(full.getvalue()) / 2


def test_photo_grids_are_webp_and_markdown_names_each_format():
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(2, 4, figsize=(8, 4))
    for ax in axes.flat:
        ax.imshow(rng.random((32, 32, 3)))
        ax.axis("off")
    photo = photo_bytes(fig, dpi=90)
    assert Image.open(io.BytesIO(photo)).format == "WEBP"
    assert markdown_image(photo, "samples").startswith("![samples](data:image/webp;base64,")
    md = markdown_image(png_bytes(_line_plot()), "curve")
    assert md.startswith("![curve](data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(md.split(",", 1)[1][:-1]))).format == "PNG"
    with pytest.raises(ValueError, match="not a PNG, JPEG or WebP"):
        markdown_image(b"GIF89a....", "gif")


def test_a_date_axis_names_the_year_not_the_last_ticks_month():
    """A September-November series read "2026-Dec" under its axis (matplotlib's default offset)."""
    from cnn_pipelines.plots import date_axis

    days = pd.bdate_range("2026-09-01", "2026-12-01")
    fig, ax = plt.subplots()
    ax.plot(days, range(len(days)))
    date_axis(ax)
    fig.canvas.draw()
    assert ax.xaxis.get_major_formatter().get_offset() == "2026"
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["Sep", "15"]
    plt.close(fig)


def test_a_small_heatmap_prints_its_values_and_a_large_one_does_not(monkeypatch):
    """A colour alone does not say whether an IC is 0.02 or 0.05; 400 numbers in a 20x20 map would be noise."""
    from cnn_pipelines import plots

    texts = []
    monkeypatch.setattr(plots, "png_bytes", lambda fig: texts.append([t.get_text() for t in fig.axes[0].texts]) or b"")
    plots.heatmap(pd.DataFrame([[0.01234, np.nan]], index=["cnn_ta"], columns=["2026-09", "2026-10"]), "IC", -0.1, 0.1)
    plots.heatmap(pd.DataFrame(np.zeros((20, 20))), "correlation")
    assert texts == [["0.0123", "n/a"], []]
