"""SVHN format 1: the digitStruct.mat reader on files in the real layout, the book's crop, the composed house
numbers, and the multi-digit reader's targets and scores."""

from __future__ import annotations

import tarfile

import h5py
import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.vision.datasets import house_numbers as hn
from cnn_pipelines.vision.models import house_numbers as reader
from cnn_pipelines_tests.vision.image_files import class_images

pytestmark = pytest.mark.timeout(180)


def boxes(*numbers: tuple[str, list[int]]) -> pd.DataFrame:
    """Boxes for images named like SVHN's, digits 20 px apart."""
    rows = [{"name": name, "position": i, "label": d, "left": 5.0 + 20 * i, "top": 4.0 + i, "width": 14.0,
             "height": 22.0} for name, digits in numbers for i, d in enumerate(digits)]
    return pd.DataFrame(rows)


def test_digit_struct_round_trip_in_svhns_layout(tmp_path):
    truth = boxes(("1.png", [1, 9]), ("2.png", [0]), ("3.png", [2, 3, 0, 5, 7]))
    path = tmp_path / "digitStruct.mat"
    hn.write_digit_struct(path, truth)
    read = hn.read_digit_struct(path)
    pd.testing.assert_frame_equal(read, truth, check_dtype=False)
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"  # what MATLAB and scipy look for
    with h5py.File(path, "r") as f:  # the layout SVHN's file has, not just one our reader accepts
        names, bbox = f["digitStruct/name"], f["digitStruct/bbox"]
        assert names.shape == bbox.shape == (3, 1) and names.dtype == h5py.ref_dtype
        assert "".join(map(chr, f[names[0, 0]][()].ravel())) == "1.png"
        one = f[bbox[1, 0]]      # one digit: the value itself, 1x1
        assert one["label"].shape == (1, 1) and one["label"][0, 0] == 10.0  # SVHN writes 0 as 10
        many = f[bbox[0, 0]]     # several digits: references to 1x1 values
        assert many["left"].dtype == h5py.ref_dtype and f[many["left"][1, 0]][0, 0] == 25.0


def test_a_bad_box_or_a_missing_image_is_named(tmp_path):
    bad = boxes(("1.png", [1, 2]), ("7.png", [4]))
    bad.loc[2, "height"] = 0
    hn.write_digit_struct(tmp_path / "digitStruct.mat", bad)
    with pytest.raises(hn.DigitStructError, match="7.png"):
        hn.read_digit_struct(tmp_path / "digitStruct.mat")
    hn.write_digit_struct(tmp_path / "digitStruct.mat", boxes(("1.png", [1, 2])))
    with pytest.raises(hn.DigitStructError, match=r"not there: \['1.png'\]"):
        hn.load_folder(tmp_path, (32, 64))
    (tmp_path / "junk.mat").write_bytes(b"not hdf5")
    with pytest.raises(hn.DigitStructError, match="junk.mat"):
        hn.read_digit_struct(tmp_path / "junk.mat")


def test_crop_is_the_union_of_the_boxes_with_a_margin_at_the_inputs_aspect():
    digits = boxes(("1.png", [1, 2, 3]))       # union: left 5..59, top 4..28
    top, left, bottom, right = hn.crop_box(digits, (60, 100), (32, 64))
    assert (right - left) / (bottom - top) == pytest.approx(2, abs=0.1)
    assert left < 5 and right > 59 and top < 4 and bottom > 28
    assert (right - left) == pytest.approx(54 * 1.3, abs=1)  # wide number: the width sets the scale
    image = np.zeros((60, 100, 3), np.uint8)
    image[:, 50:] = 200
    crop = hn.crop_and_resize(image, (-10, -10, 30, 70), (32, 64))  # leaves the image: edge-padded
    assert crop.shape == (32, 64, 3) and crop[:, :5].max() == 0 and crop[:, -3:].min() == 200


def test_targets_are_length_then_digits_left_to_right_and_too_long_numbers_are_named():
    df = boxes(("1.png", [4, 0, 2]), ("2.png", [9]))
    df.loc[df["name"] == "1.png", "left"] = [40.0, 5.0, 70.0]  # file order is not reading order
    y = hn.encode_targets(df, ["1.png", "2.png"])
    assert y.tolist() == [[2, 0, 4, 2, 10, 10], [0, 9, 10, 10, 10, 10]]
    assert hn.numbers_from_targets(y) == ["042", "9"]
    with pytest.raises(hn.DigitStructError, match="6.png"):
        hn.encode_targets(boxes(("6.png", [1, 2, 3, 4, 5, 6])), ["6.png"])


def test_composed_numbers_are_written_in_format_1_and_read_back_exactly(tmp_path):
    digits, labels = class_images(50, seed=3)
    images, truth = hn.compose_house_numbers(digits, labels, 40, seed=0)
    assert set(truth.groupby("name").size()) == {1, 2, 3, 4, 5}
    assert all(img.dtype == np.uint8 and img.shape[2] == 3 for img in images)
    hn.write_folder(tmp_path / "train", images, truth)
    crops, y, names = hn.load_folder(tmp_path / "train", (32, 64))
    assert names == [f"{i + 1}.png" for i in range(40)] and crops.shape == (40, 32, 64, 3)
    expected = truth.sort_values(["name", "left"]).groupby("name", sort=False)["label"].apply(
        lambda s: "".join(map(str, s)))
    assert hn.numbers_from_targets(y) == [expected[n] for n in names]
    # each box holds its digit's ink: the box's pixels differ from the background more than the margins do
    first = truth[truth["name"] == "1.png"].iloc[0]
    img = images[0].astype(float)
    inside = img[int(first.top):int(first.top + first.height), int(first.left):int(first.left + first.width)]
    assert inside.std() > 0.5 * img.std()


def test_the_svhn_archive_is_unpacked_atomically(tmp_path):
    digits, labels = class_images(20, seed=1)
    images, truth = hn.compose_house_numbers(digits, labels, 5, seed=1)
    hn.write_folder(tmp_path / "src" / "test", images, truth)
    with tarfile.open(tmp_path / "test.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "test", arcname="test")
    folder = hn.download_svhn("test", tmp_path / "svhn", url=(tmp_path / "test.tar.gz").as_uri())
    assert len(hn.read_digit_struct(folder / "digitStruct.mat").groupby("name")) == 5
    assert sorted(p.name for p in (tmp_path / "svhn").iterdir()) == ["test", "test.tar.gz"]


def test_sequence_scores_count_a_number_right_only_when_length_and_every_digit_are():
    y = np.array([[1, 4, 2, 10, 10, 10], [0, 7, 10, 10, 10, 10], [2, 1, 2, 3, 10, 10]])
    pred = y.copy()
    pred[1, 0] = 1               # 7 read as a two-digit number
    pred[2, 3] = 8               # last digit wrong
    pred[0, 4] = 5               # beyond the predicted length: ignored
    scores = reader.sequence_scores(y, pred)
    assert scores["sequence_accuracy"] == pytest.approx(1 / 3)
    assert scores["digit_accuracy"] == pytest.approx(5 / 6)
    assert scores["length_accuracy"] == pytest.approx(2 / 3)


def test_the_reader_has_a_length_and_five_digit_outputs_and_learns_from_format_1_crops(tmp_path):
    digits, labels = class_images(60, seed=2)
    images, truth = hn.compose_house_numbers(digits, labels, 64, seed=2)
    hn.write_folder(tmp_path / "train", images, truth)
    x, y, _ = hn.load_folder(tmp_path / "train", (32, 64))
    model = reader.compile_reader(reader.multi_digit_cnn((32, 64, 3), width=8, dense=(32, 32)), 3e-3)
    assert model.output_names == list(reader.OUTPUTS)
    assert [o.shape[-1] for o in model.outputs] == [5, 11, 11, 11, 11, 11]
    before = model.evaluate(x, reader.targets_dict(y), verbose=0)[0]
    model.fit(x, reader.targets_dict(y), epochs=10, batch_size=16, verbose=0)
    assert model.evaluate(x, reader.targets_dict(y), verbose=0)[0] < 0.8 * before
    pred, conf = reader.predict_numbers(model, x)
    assert pred.shape == (64, 6) and ((conf > 0) & (conf <= 1)).all()
