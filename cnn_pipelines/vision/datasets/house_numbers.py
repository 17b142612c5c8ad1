"""Multi-digit house numbers in SVHN's format 1 (notebooks 12/13): PNG files plus a ``digitStruct.mat``.

``digitStruct.mat`` is a MATLAB v7.3 file, i.e. HDF5: ``/digitStruct/name`` and ``/digitStruct/bbox`` hold one
object reference per image. A name points to a uint16 array of character codes; a bbox points to a group with
``label``, ``left``, ``top``, ``width`` and ``height``, each a 1x1 number for a one-digit image or an n x 1 array
of references to 1x1 numbers for n digits. Label 10 is the digit 0. ``read_digit_struct`` reads that layout and
``write_digit_struct`` writes it, so a folder we make is read by exactly the code that reads SVHN's own.

Offline there is no SVHN: ``compose_house_numbers`` writes numbers made of real MNIST digits in the same format.
Online (``full`` preset) ``download_svhn`` fetches SVHN's ``train.tar.gz`` / ``test.tar.gz``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from PIL import Image

BOX_FIELDS = ("label", "left", "top", "width", "height")
MAX_DIGITS = 5
BLANK = 10          # class of an empty digit position in the model's targets
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/{split}.tar.gz"
MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015 HDF5 schema 1.00 ."


class DigitStructError(ValueError):
    """A digitStruct.mat or its images are not in SVHN's format 1."""


# --- digitStruct.mat -------------------------------------------------------------------------------------------

def read_digit_struct(path: Path) -> pd.DataFrame:
    """One row per digit box: image name, position in the number (0 = leftmost box in file order), label
    (0-9; SVHN's 10 becomes 0), left, top, width, height in pixels."""
    rows = []
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DigitStructError(f"{path}: not an HDF5 (MATLAB v7.3) file: {exc}") from exc
    with f:
        if "digitStruct" not in f or not {"name", "bbox"} <= set(f["digitStruct"]):
            raise DigitStructError(f"{path}: no /digitStruct/name and /digitStruct/bbox (found {list(f)})")
        names, boxes = f["digitStruct"]["name"], f["digitStruct"]["bbox"]
        if names.shape != boxes.shape:
            raise DigitStructError(f"{path}: {names.size} names but {boxes.size} bbox entries")
        for i, (name_ref, box_ref) in enumerate(zip(names[:, 0] if names.ndim == 2 else names[...],
                                                    boxes[:, 0] if boxes.ndim == 2 else boxes[...])):
            name = "".join(map(chr, f[name_ref][()].ravel()))
            group = f[box_ref]
            missing = [k for k in BOX_FIELDS if k not in group]
            if missing:
                raise DigitStructError(f"{path}: image {i} ({name}) has no {missing} in its bbox")
            values = {k: _numbers(f, group[k]) for k in BOX_FIELDS}
            n = {len(v) for v in values.values()}
            if len(n) != 1:
                raise DigitStructError(f"{path}: image {i} ({name}) has fields of different lengths "
                                       f"{ {k: len(v) for k, v in values.items()} }")
            for pos in range(n.pop()):
                rows.append({"name": name, "position": pos, **{k: float(values[k][pos]) for k in BOX_FIELDS}})
    df = pd.DataFrame(rows, columns=["name", "position", *BOX_FIELDS])
    bad = df[~df["label"].isin(np.arange(1, 11)) | (df["width"] <= 0) | (df["height"] <= 0)]
    if len(bad):
        raise DigitStructError(f"{path}: boxes with a label outside 1..10 or no area: "
                               f"{bad.head(10).to_dict('records')}")
    df["label"] = (df["label"].astype(int) % 10).astype(np.int64)
    return df


def _numbers(f: h5py.File, ds: h5py.Dataset) -> list[float]:
    """A bbox field: a 1x1 number, or n x 1 references to 1x1 numbers."""
    values = ds[()]
    if values.dtype == object:
        return [float(f[r][0, 0]) for r in values.ravel()]
    return [float(v) for v in values.ravel()]


def write_digit_struct(path: Path, boxes: pd.DataFrame) -> None:
    """Write ``boxes`` (as ``read_digit_struct`` returns them; label 0 is stored as 10) as a MATLAB v7.3
    ``digitStruct.mat`` in SVHN's layout, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        group = f.create_group("digitStruct")
        group.attrs["MATLAB_class"] = np.bytes_("struct")
        counter = iter(range(10**9))

        def ref_to(data: np.ndarray, matlab_class: str) -> h5py.Reference:
            ds = refs.create_dataset(f"r{next(counter)}", data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            return ds.ref

        name_refs, box_refs = [], []
        for name, digits in boxes.groupby("name", sort=False):
            name_refs.append(ref_to(np.array([[ord(c)] for c in name], dtype=np.uint16), "char"))
            g = refs.create_group(f"g{next(counter)}")
            g.attrs["MATLAB_class"] = np.bytes_("struct")
            digits = digits.sort_values("position")
            for k in BOX_FIELDS:
                vals = digits[k].to_numpy(float)
                if k == "label":
                    vals = np.where(vals == 0, 10.0, vals)
                if len(vals) == 1:
                    g.create_dataset(k, data=vals.reshape(1, 1)).attrs["MATLAB_class"] = np.bytes_("double")
                else:
                    g.create_dataset(k, data=np.array([[ref_to(np.array([[v]]), "double")] for v in vals],
                                                      dtype=h5py.ref_dtype))
            box_refs.append(g.ref)
        group.create_dataset("name", data=np.array(name_refs, dtype=h5py.ref_dtype).reshape(-1, 1))
        group.create_dataset("bbox", data=np.array(box_refs, dtype=h5py.ref_dtype).reshape(-1, 1))
    with open(tmp, "r+b") as fh:  # MATLAB's text header lives in the HDF5 user block
        fh.write(MAT_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")
    os.replace(tmp, path)


# --- preprocessing (the book's: crop the union of the boxes with a margin, resize) ------------------------------

def crop_box(digits: pd.DataFrame, image_hw: tuple[int, int], size: tuple[int, int],
             margin: float = 0.3) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the union of one image's boxes, grown by ``margin`` of its size in each
    direction (Goodfellow et al.'s 30 %), then widened or heightened to the aspect ratio of ``size`` (h, w), so
    digits are not stretched. May extend past the image (the crop pads with edge pixels)."""
    top, left = digits["top"].min(), digits["left"].min()
    bottom, right = (digits["top"] + digits["height"]).max(), (digits["left"] + digits["width"]).max()
    h, w = (bottom - top) * (1 + margin), (right - left) * (1 + margin)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    aspect = size[1] / size[0]
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return (int(round(cy - h / 2)), int(round(cx - w / 2)), int(round(cy + h / 2)), int(round(cx + w / 2)))


def crop_and_resize(image: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w, 3) crop of ``image`` (edge-padded where the box leaves it), resized to ``size`` (h, w)."""
    top, left, bottom, right = box
    H, W = image.shape[:2]
    pad = max(0, -top, -left, bottom - H, right - W)
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    crop = image[top + pad:bottom + pad, left + pad:right + pad]
    return np.asarray(Image.fromarray(crop).resize((size[1], size[0]), Image.BILINEAR))


def encode_targets(boxes: pd.DataFrame, names: list[str], max_digits: int = MAX_DIGITS) -> np.ndarray:
    """(n, 1 + max_digits) int targets: number length - 1, then the digits left to right, BLANK after the end.
    Raises naming the images with more than ``max_digits`` digits."""
    counts = boxes.groupby("name").size()
    too_long = counts[counts > max_digits]
    if len(too_long):
        raise DigitStructError(f"{len(too_long)} images have more than {max_digits} digits: "
                               f"{too_long.head(10).to_dict()} (drop them or raise max_digits)")
    y = np.full((len(names), 1 + max_digits), BLANK, np.int64)
    index = {n: i for i, n in enumerate(names)}
    for name, digits in boxes.groupby("name", sort=False):
        if name not in index:
            continue
        labels = digits.sort_values("left")["label"].to_numpy()  # reading order, left to right
        y[index[name], 0] = len(labels) - 1
        y[index[name], 1:1 + len(labels)] = labels
    return y


def numbers_from_targets(y: np.ndarray) -> list[str]:
    """The house numbers a target (or prediction) array spells: length, then that many digits."""
    return ["".join(str(d) for d in row[1:2 + row[0]]) for row in np.asarray(y)]


def load_folder(folder: Path, size: tuple[int, int], margin: float = 0.3,
                max_digits: int = MAX_DIGITS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a format-1 folder (``digitStruct.mat`` + PNGs): crops (n, h, w, 3) uint8, targets, image names.

    Images with more than ``max_digits`` digits are dropped (SVHN has a handful of 6-digit numbers); a missing
    or unreadable PNG raises, naming it.
    """
    folder = Path(folder)
    boxes = read_digit_struct(folder / "digitStruct.mat")
    counts = boxes.groupby("name", sort=False).size()
    names = [n for n in counts.index if counts[n] <= max_digits]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DigitStructError(f"{folder}: digitStruct.mat names {len(missing)} images that are not there: "
                               f"{missing[:10]}")
    crops = np.empty((len(names), *size, 3), np.uint8)
    by_name = dict(tuple(boxes.groupby("name", sort=False)))
    for i, name in enumerate(names):
        try:
            image = np.asarray(Image.open(folder / name).convert("RGB"))
        except OSError as exc:
            raise DigitStructError(f"{folder / name}: unreadable image ({exc})") from exc
        crops[i] = crop_and_resize(image, crop_box(by_name[name], image.shape[:2], size, margin), size)
    return crops, encode_targets(boxes[boxes["name"].isin(names)], names, max_digits), names


# --- offline: house numbers made of real MNIST digits -----------------------------------------------------------

def ink_box(digit: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a digit's ink (pixels above 10 % of the maximum)."""
    rows, cols = np.nonzero(digit > 0.1 * max(1, digit.max()))
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1


def compose_house_numbers(digits: np.ndarray, labels: np.ndarray, n: int, seed: int
                          ) -> tuple[list[np.ndarray], pd.DataFrame]:
    """``n`` RGB house-number images of 1-5 real MNIST digits (uniform lengths) and their boxes.

    Each number gets its own digit height (18-40 px), letter spacing (touching to wide), per-digit vertical
    jitter, ink and background colours of random contrast, a background gradient with line and patch clutter,
    neighbouring ink cut off at the edges (as SVHN's crops often show) and pixel noise. Boxes are the digits'
    ink boxes, as SVHN's annotators drew them.
    """
    rng = np.random.default_rng(seed)
    images, rows = [], []
    for i in range(n):
        k = int(rng.integers(1, MAX_DIGITS + 1))
        picks = rng.integers(0, len(digits), k)
        height = rng.uniform(18, 40)
        gap = rng.uniform(-0.08, 0.35) * height
        glyphs, widths = [], []
        for j in picks:
            d = digits[j, ..., 0] if digits.ndim == 4 else digits[j]
            t, l, b, r = ink_box(d)
            scale = height / (b - t)
            g = np.asarray(Image.fromarray(d[t:b, l:r]).resize(
                (max(1, int(round((r - l) * scale))), max(1, int(round(height)))), Image.BILINEAR), np.float32)
            glyphs.append(g / 255.0)
            widths.append(g.shape[1])
        text_w = int(sum(widths) + gap * (k - 1))
        H = int(height * rng.uniform(1.6, 2.6))
        W = int(text_w + height * rng.uniform(0.8, 2.0))
        bg, ink = _colours(rng)
        canvas = _background(rng, H, W, bg)
        x = int(rng.uniform(0.1, 0.9) * max(1, W - text_w))
        y0 = int(rng.uniform(0.15, 0.85) * max(1, H - height))
        for pos, (g, label) in enumerate(zip(glyphs, labels[picks])):
            y = int(np.clip(y0 + rng.normal(0, 0.05 * height), 0, H - g.shape[0]))
            xs = slice(max(0, x), min(W, x + g.shape[1]))
            a = g[:, xs.start - x:xs.stop - x, None]
            canvas[y:y + g.shape[0], xs] = canvas[y:y + g.shape[0], xs] * (1 - a) + ink * a
            rows.append({"name": f"{i + 1}.png", "position": pos, "label": int(label), "left": float(xs.start), "top": float(y),
                         "width": float(xs.stop - xs.start), "height": float(g.shape[0])})
            x += g.shape[1] + int(gap)
        _edge_clutter(rng, canvas, digits, ink)
        canvas += rng.normal(0, rng.uniform(0, 0.04), canvas.shape)
        images.append((np.clip(canvas, 0, 1) * 255).astype(np.uint8))
    return images, pd.DataFrame(rows, columns=["name", "position", *BOX_FIELDS])


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and ink colours at least 0.35 apart in brightness, either way round."""
    while True:
        bg, ink = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(bg.mean() - ink.mean()) > 0.35:
            return bg, ink


def _background(rng: np.random.Generator, H: int, W: int, bg: np.ndarray) -> np.ndarray:
    """A colour gradient with a few lines and patches in shades of the background."""
    ramp = np.linspace(-1, 1, W)[None, :, None] * rng.uniform(-0.15, 0.15) \
        + np.linspace(-1, 1, H)[:, None, None] * rng.uniform(-0.15, 0.15)
    canvas = np.clip(bg + ramp, 0, 1).astype(np.float32) * np.ones((H, W, 3), np.float32)
    for _ in range(int(rng.integers(0, 4))):
        shade = np.clip(bg + rng.uniform(-0.25, 0.25, 3), 0, 1)
        if rng.random() < 0.5:
            r = int(rng.integers(0, H))
            canvas[r:r + int(rng.integers(1, 4))] = shade
        else:
            t, l = int(rng.integers(0, H)), int(rng.integers(0, W))
            canvas[t:t + int(rng.integers(3, H // 2 + 4)), l:l + int(rng.integers(3, W // 3 + 4))] = shade
    return canvas


def _edge_clutter(rng: np.random.Generator, canvas: np.ndarray, digits: np.ndarray, ink: np.ndarray) -> None:
    """Half of the images get part of a neighbouring digit cut off at the left or right edge."""
    if rng.random() < 0.5:
        return
    H, W = canvas.shape[:2]
    d = digits[int(rng.integers(0, len(digits)))]
    d = (d[..., 0] if d.ndim == 3 else d).astype(np.float32) / 255.0
    side = int(min(H, 28 * rng.uniform(0.8, 1.4)))
    g = np.asarray(Image.fromarray((d * 255).astype(np.uint8)).resize((side, side)), np.float32) / 255.0
    show = int(side * rng.uniform(0.2, 0.4))
    y = int(rng.integers(0, max(1, H - side)))
    if rng.random() < 0.5:  # the right end of a digit at the left edge, or the left end at the right edge
        cols, part = slice(0, show), g[:, -show:]
    else:
        cols, part = slice(W - show, W), g[:, :show]
    a = part[:H - y, :, None]
    canvas[y:y + a.shape[0], cols] = canvas[y:y + a.shape[0], cols] * (1 - a) + ink * a


def write_folder(folder: Path, images: list[np.ndarray], boxes: pd.DataFrame) -> None:
    """Write PNGs and ``digitStruct.mat`` as SVHN ships them, into a temporary folder renamed into place."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp / f"{i + 1}.png")
    write_digit_struct(tmp / "digitStruct.mat", boxes)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


# --- online: SVHN format 1 -------------------------------------------------------------------------------------

def download_svhn(split: str, dest: Path, url: str | None = None) -> Path:
    """Fetch and unpack SVHN's ``{split}.tar.gz`` (format 1) into ``dest/split``; a no-op when it is there."""
    dest = Path(dest)
    folder = dest / split
    if (folder / "digitStruct.mat").exists():
        return folder
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{split}.tar.gz"
    if not archive.exists():
        tmp = archive.with_name(archive.name + ".part")
        urllib.request.urlretrieve(url or SVHN_URL.format(split=split), tmp)
        os.replace(tmp, archive)
    return extract_svhn(archive, dest, split)


def extract_svhn(archive: Path, dest: Path, split: str) -> Path:
    """Unpack a format-1 archive (members ``split/N.png`` and ``split/digitStruct.mat``) atomically."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=dest))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    if not (tmp / split / "digitStruct.mat").exists():
        shutil.rmtree(tmp)
        raise DigitStructError(f"{archive}: no {split}/digitStruct.mat inside")
    folder = Path(dest) / split
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp / split, folder)
    shutil.rmtree(tmp)
    return folder
