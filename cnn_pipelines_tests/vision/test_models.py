"""The chapter's image networks, resumable checkpointed training, and the filter demo."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cnn_pipelines.vision.datasets import sources
from cnn_pipelines.vision.datasets.catalog import available_datasets, prepare
from cnn_pipelines.vision.models.architectures import alexnet_style, edge_filters, filter_network, lenet5
from cnn_pipelines.vision.models.catalog import model_specs
from cnn_pipelines.vision.models.filters import run_filter_demo
from cnn_pipelines.vision.models.training import TrainConfig, evaluate_on_test, split_slices, train_classifier
from cnn_pipelines_tests.vision.image_files import mnist5k_csv

pytestmark = pytest.mark.timeout(300)


def test_lenet5_and_the_alexnet_style_network_have_the_books_sizes():
    assert lenet5((28, 28, 1), 10).count_params() == 303_626  # notebook 02: "over 300,000 parameters"
    assert [layer.name for layer in lenet5((28, 28, 1), 10).layers][:2] == ["CONV1", "POOL1"]
    # notebook 03: "a total of 21.5 million parameters"
    assert alexnet_style((32, 32, 3), 10, width=1.0, augment=False).count_params() == pytest.approx(21.5e6, rel=0.01)
    assert alexnet_style((32, 32, 3), 10, width=0.25).count_params() < 1.5e6


def test_edge_filters_are_the_books_and_find_edges_where_they_are():
    f = edge_filters()
    assert f.shape == (4, 4, 1, 4)
    assert f[:, :, 0, 0].tolist() == [[-1, -1, 1, 1]] * 4
    np.testing.assert_array_equal(f[:, :, 0, 1], -f[:, :, 0, 0])
    np.testing.assert_array_equal(f[:, :, 0, 2], f[:, :, 0, 0].T)
    image = np.zeros((1, 12, 12, 1), np.float32)
    image[..., 6:, :] = 1.0  # dark left half, bright right half: one vertical edge
    conv, _ = (np.asarray(a)[0] for a in filter_network(f)(image))
    assert conv[..., 0].max() == 8 and set(np.flatnonzero(conv[..., 0].max(axis=0))) == {3, 4, 5}
    assert conv[..., 1].max() == 0 and conv[..., 2].max() == 0 and conv[..., 3].max() == 0


def test_filter_demo_runs_on_a_real_photo_and_saves_its_network(tmp_path):
    demo = run_filter_demo(tmp_path)
    h, w, _ = demo.image.shape
    assert max(h, w) <= 320 and demo.conv.shape == (h - 3, w - 3, 4) and demo.pooled.shape[0] == (h - 3) // 4
    assert (demo.stats["active pixels %"] > 5).all()  # a real photo has edges of every kind
    assert demo.model_path.exists() and (tmp_path / "activations.npz").exists()
    saved = np.load(tmp_path / "activations.npz", allow_pickle=False)
    np.testing.assert_array_equal(saved["filters"], edge_filters())


@pytest.fixture
def digits(vision_lake, tmp_path, monkeypatch):
    mnist5k_csv(tmp_path / "mnist_5k.csv.gz", per_class=30)
    monkeypatch.setattr(sources, "mnist5k_csv", lambda: tmp_path / "mnist_5k.csv.gz")
    spec = available_datasets(vision_lake)["mnist"]
    prepare(spec, vision_lake)
    return spec


CFG = TrainConfig(epochs=3, batch_size=16, learning_rate=3e-3, patience=10, steps_per_execution=2)


def test_validation_is_the_training_splits_tail_and_never_trained_on():
    assert split_slices(4000, TrainConfig(epochs=1, batch_size=32)) == ("train[:3600]", "train[3600:]", 3600, 400)
    assert split_slices(60000, TrainConfig(epochs=1, batch_size=32, train_limit=6000))[:2] == ("train[:6000]", "train[54000:]")
    assert split_slices(100, TrainConfig(epochs=1, batch_size=32, train_limit=500))[0] == "train[:90]"


def test_training_checkpoints_every_epoch_resumes_and_is_not_repeated(vision_lake, digits):
    first = train_classifier("lenet5_mnist", lenet5, digits, vision_lake, CFG, log=lambda m: None, stop_after=1)
    assert first.trained_epochs == 1 and len(first.epochs) == 1
    assert (first.ckpt / "epoch_01.keras").exists() and not (first.ckpt / "epoch_02.keras").exists()
    resumed = train_classifier("lenet5_mnist", lenet5, digits, vision_lake, CFG, log=lambda m: None)
    assert resumed.ckpt == first.ckpt and resumed.trained_epochs == 2 and resumed.epochs["epoch"].tolist() == [1, 2, 3]
    again = train_classifier("lenet5_mnist", lenet5, digits, vision_lake, CFG, log=lambda m: None)
    assert again.trained_epochs == 0 and again.epochs.equals(resumed.epochs)
    state = json.loads((first.ckpt / "state.json").read_text())
    assert [e["epoch"] for e in state["epochs"]] == [1, 2, 3]
    config = json.loads((first.ckpt / "config.json").read_text())
    assert config["dataset"]["name"] == "mnist5k" and config["epochs"] == 3
    assert [layer["config"].get("filters") for layer in config["architecture"]["layers"]][1:6:2] == [6, 16, 120]
    # the chosen epoch is the best on validation; the test split is only read afterwards
    assert resumed.best_epoch == int(resumed.epochs.loc[resumed.epochs["val_accuracy"].idxmax(), "epoch"])
    test = evaluate_on_test(resumed, digits, vision_lake, CFG)
    assert len(test.labels) == 60 and test.accuracy == pytest.approx((test.predicted == test.labels).mean())
    assert test.accuracy > 0.5  # the synthetic bars are easy: a broken pipeline would sit at 10 %


def test_a_models_weights_do_not_depend_on_what_the_process_ran_before(vision_lake, digits, tmp_path):
    """One vision run trains every model in one process, a cluster in several: a model's initial weights come
    from its own seed, so its epochs are the same whatever was built or drawn before it (adding an asset to the
    graph once moved cifar_cnn's demo accuracy from 68.88 to 66.25 %)."""
    import keras

    cfg = dataclasses.replace(CFG, epochs=1)
    first = train_classifier("m", lenet5, digits, vision_lake, cfg, log=lambda m: None)
    lenet5((28, 28, 1), 10)  # draws from Keras's global seed stream, as an earlier model in the run would
    keras.random.uniform((3,))
    other = dataclasses.replace(vision_lake, lake_root=tmp_path / "other_lake")
    prepare(digits, other)
    second = train_classifier("m", lenet5, digits, other, cfg, log=lambda m: None)
    a, b = (keras.models.load_model(t.ckpt / "epoch_01.keras").get_weights() for t in (first, second))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_changed_config_or_network_trains_a_new_model_beside_the_old(vision_lake, digits):
    base = train_classifier("m", lenet5, digits, vision_lake, dataclasses.replace(CFG, epochs=1), log=lambda m: None)
    other_cfg = train_classifier("m", lenet5, digits, vision_lake, dataclasses.replace(CFG, epochs=1, learning_rate=1e-3),
                                 log=lambda m: None)
    other_net = train_classifier("m", lambda shape, n: alexnet_style(shape, n, width=0.05), digits, vision_lake,
                                 dataclasses.replace(CFG, epochs=1), log=lambda m: None)
    assert len({base.ckpt, other_cfg.ckpt, other_net.ckpt}) == 3
    assert other_cfg.trained_epochs == other_net.trained_epochs == 1 and base.ckpt.exists()


def test_early_stopping_ends_training_and_is_remembered(vision_lake, digits):
    cfg = dataclasses.replace(CFG, epochs=8, patience=1, learning_rate=0.0)  # nothing improves after epoch 1
    result = train_classifier("flat", lenet5, digits, vision_lake, cfg, log=lambda m: None)
    assert result.stopped_early and len(result.epochs) == 2
    assert train_classifier("flat", lenet5, digits, vision_lake, cfg, log=lambda m: None).trained_epochs == 0


def test_model_catalog_labels_the_offline_cifar_stand_in_honestly(vision_lake):
    from cnn_pipelines_tests.vision.image_files import mnist_mirror

    only_digits = {m.name: m for m in model_specs(available_datasets(vision_lake), online=False)}
    assert only_digits["cifar_cnn"].dataset == "mnist" and "not CIFAR-10" in only_digits["cifar_cnn"].title
    assert "lenet5_fashion_mnist" not in only_digits
    mnist_mirror(vision_lake.fashion_mnist_dir, 20, 10)
    offline = {m.name: m for m in model_specs(available_datasets(vision_lake), online=False)}
    assert offline["cifar_cnn"].dataset == "fashion_mnist" and offline["cifar_cnn"].target == 0.91
    assert offline["lenet5_mnist"].target == 0.97 and offline["lenet5_fashion_mnist"].target == 0.89
    online = {m.name: m for m in model_specs(available_datasets(dataclasses.replace(vision_lake, online=True)), True)}
    assert online["cifar_cnn"].dataset == "cifar10" and "not CIFAR-10" not in online["cifar_cnn"].title
    # the book's CIFAR-10 result is compared only with a CIFAR-10 run
    assert online["cifar_cnn"].book == "76.23 % on CIFAR-10" and "not comparable" in offline["cifar_cnn"].book
    from cnn_pipelines.vision.models.house_number_assets import book_line

    assert book_line("SVHN house numbers") == "book: 83 % on SVHN"
    assert "not comparable" in book_line("house numbers composed of real MNIST digits")
