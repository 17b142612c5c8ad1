"""Transfer learning at toy size: a backbone cut from a trained checkpoint, bottleneck features, a head on them,
fine-tuning that moves only the top block, the ImageNet backbones' wiring with weights=None, and the
class-balanced nested subsets of the learning curve."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.vision.models import catalog
from cnn_pipelines.vision.models.architectures import alexnet_style, compile_classifier, keras
from cnn_pipelines.vision.models.training import TrainConfig, fit_in_memory, train_arrays
from cnn_pipelines.vision.models.transfer import (build_backbone, classification_head, cut_backbone,
                                                  extract_features, nested_subsets, preprocess, stacked)
from cnn_pipelines_tests.vision.image_files import class_images

pytestmark = pytest.mark.timeout(240)

SMALL = dataclasses.replace(catalog.FASHION_BACKBONE,
                            scratch=lambda shape, n: alexnet_style(shape, n, width=0.03, augment=False))


@pytest.fixture(scope="module")
def images():
    x, y = class_images(120, side=32, channels=3, seed=4)
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def trained_source(images):
    """A tiny AlexNet-style network trained briefly, as part 1's cifar_cnn checkpoint is."""
    x, y = images
    net = compile_classifier(alexnet_style((32, 32, 3), 10, width=0.03, augment=True), "adam", 1e-3)
    net.fit(x / 255.0, y, epochs=1, batch_size=32, verbose=0)
    return net


def test_the_backbone_is_the_checkpoints_layers_without_augmentation_or_classifier(trained_source, images):
    backbone = build_backbone(SMALL, trained_source)
    names = [la.name for la in backbone.layers]
    assert "augmentation" not in names and "FC1" not in names and names[-2:] == ["NORM2", "FEATURES"]  # flattened
    conv1 = trained_source.get_layer("CONV1").get_weights()[0]
    np.testing.assert_array_equal(backbone.get_layer("CONV1").get_weights()[0], conv1)
    features = extract_features(backbone, images[0], "unit", batch_size=50)
    assert features.shape == (120, backbone.output_shape[-1]) and features.dtype == np.float32
    with pytest.raises(ValueError, match="no layer 'CONV9'"):
        cut_backbone(trained_source, "CONV9")


def test_fine_tuning_trains_the_top_block_and_the_head_and_nothing_below(trained_source, images):
    x, y = images
    backbone = build_backbone(SMALL, trained_source)
    head = classification_head(backbone.output_shape[-1], 10)
    model = compile_classifier(stacked(backbone, head, "CONV2"), "adam", 1e-2)
    frozen = {n: backbone.get_layer(n).get_weights() for n in ("CONV1", "NORM1", "NORM2")}
    top = backbone.get_layer("CONV2").get_weights()[0].copy()
    model.fit(preprocess(x, "unit"), y, epochs=2, batch_size=16, verbose=0)
    for name, weights in frozen.items():  # below the top block, and every batch normalization: untouched
        for before, after in zip(weights, backbone.get_layer(name).get_weights()):
            np.testing.assert_array_equal(before, after)
    assert not np.allclose(top, backbone.get_layer("CONV2").get_weights()[0])
    scratch = stacked(build_backbone(SMALL, pretrained=False), classification_head(backbone.output_shape[-1], 10), None)
    assert all(w.trainable for w in scratch.get_layer("backbone").layers if w.weights and "NORM" not in w.name)
    with pytest.raises(ValueError, match="no layer 'block9'"):
        stacked(backbone, head, "block9")


@pytest.mark.parametrize("backbone", [catalog.VGG16, catalog.DENSENET201])
def test_the_imagenet_backbones_are_wired_the_same_way_with_random_weights(backbone):
    spec = dataclasses.replace(backbone, image_size=32, weights=None)  # weights=None: nothing is downloaded
    net = build_backbone(spec)
    assert net.output_shape == (None, {"vgg16": 512, "densenet201": 1920}[spec.name])
    model = stacked(net, classification_head(net.output_shape[-1], 2), spec.top_block)
    names = [la.name for la in net.layers]
    top = names.index(spec.top_block)
    trainable = {w.path for w in model.trainable_weights}
    assert all(w.path in trainable for la in net.layers[top:] for w in la.trainable_weights)
    assert not any(w.path in trainable for la in net.layers[:top] for w in la.weights)
    features = extract_features(net, np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8),
                                spec.preprocess)
    assert features.shape == (3, net.output_shape[-1]) and np.isfinite(features).all()


def test_preprocessing_matches_keras_applications():
    x = np.random.default_rng(1).integers(0, 255, (2, 8, 8, 3)).astype(np.uint8)
    np.testing.assert_allclose(preprocess(x, "unit"), x / 255.0, rtol=1e-6)
    np.testing.assert_allclose(preprocess(x, "vgg16"), keras.applications.vgg16.preprocess_input(x.astype("float32")),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="preprocess must be"):
        preprocess(x, "bgr")


def test_learning_curve_subsets_are_nested_and_class_balanced():
    labels = np.repeat(np.arange(10), 30)[np.random.default_rng(0).permutation(300)]
    subsets = nested_subsets(labels, [20, 50, 100, 10**9])
    assert [len(v) for v in subsets.values()] == [20, 50, 100, 300]
    assert set(subsets[20]) <= set(subsets[50]) <= set(subsets[100])
    assert np.bincount(labels[subsets[20]], minlength=10).tolist() == [2] * 10
    assert np.bincount(labels[subsets[50]], minlength=10).tolist() == [5] * 10


def test_a_head_on_features_is_checkpointed_resumed_and_not_retrained(tmp_path, images):
    x, y = images
    features = x.reshape(len(x), -1)[:, ::16].astype(np.float32) / 255.0
    cfg = TrainConfig(epochs=3, batch_size=32, patience=3)

    def start():
        return compile_classifier(classification_head(features.shape[1], 10), "adam", 1e-3)

    args = ("head", tmp_path, {"features": "toy"}, start, features[:100], y[:100], features[100:], y[100:], cfg)
    first = train_arrays(*args, stop_after=2)
    assert first.trained_epochs == 2 and sorted(p.name for p in first.ckpt.glob("epoch_*")) == [
        "epoch_01.keras", "epoch_02.keras"]
    resumed = train_arrays(*args)
    assert resumed.ckpt == first.ckpt and resumed.trained_epochs == 1 and len(resumed.epochs) == 3
    assert train_arrays(*args).trained_epochs == 0
    other = train_arrays("head", tmp_path, {"features": "other"}, start, features[:100], y[:100], features[100:],
                         y[100:], cfg, stop_after=1)
    assert other.ckpt != first.ckpt and first.ckpt.exists()


def test_a_tiny_training_set_still_gets_its_minimum_of_steps(images):
    x, y = images
    features = x.reshape(len(x), -1)[:, ::16].astype(np.float32) / 255.0
    model, record = fit_in_memory(lambda: compile_classifier(classification_head(features.shape[1], 10), "adam", 1e-3),
                                  features[:10], y[:10], features[100:], y[100:],
                                  TrainConfig(epochs=2, batch_size=5, patience=100), min_steps=20)
    assert record["epochs_run"] == 10 and 1 <= record["best_epoch"] <= 10


def test_a_learning_curve_point_chooses_its_epoch_on_labels_inside_its_budget():
    """Issue 29: every point chose its epoch on the full validation tail (400 images), so '50 labelled images'
    used about 450 labels. The budget is split class by class: about a fifth validates, the rest trains, and
    together they are exactly the point's images."""
    from cnn_pipelines.vision.models.transfer import budget_split

    labels = np.repeat(np.arange(10), 30)
    for n, idx in nested_subsets(labels, [10, 20, 50, 100]).items():
        train, val = budget_split(idx, labels)
        assert len(np.intersect1d(train, val)) == 0 and np.array_equal(np.sort(np.concatenate([train, val])), idx)
        per_class = np.bincount(labels[idx], minlength=10)
        assert np.array_equal(np.bincount(labels[val], minlength=10),
                              [0 if k < 2 else max(1, round(0.2 * k)) for k in per_class]), n


def test_a_learning_curve_point_keeps_the_epoch_of_lowest_validation_loss_not_the_first_accuracy_tie():
    """On a 10-image validation slice accuracy moves in 10-point steps: epochs 2-6 all reach 90 %, and keeping
    the first of them kept a network trained for two epochs. The loss keeps improving; its lowest epoch is kept
    (the earliest of equal losses)."""
    from cnn_pipelines.vision.models.training import lowest_loss_epoch

    history = [{"epoch": e, "val_accuracy": a, "val_loss": v}
               for e, a, v in [(1, 0.6, 1.2), (2, 0.9, 0.8), (3, 0.9, 0.5), (4, 0.9, 0.4), (5, 0.9, 0.4), (6, 0.9, 0.45)]]
    assert lowest_loss_epoch(history) == 4


def test_a_diverged_loss_never_wins_and_all_diverged_falls_back_to_accuracy():
    from cnn_pipelines.vision.models.training import lowest_loss_epoch

    nan = float("nan")
    assert lowest_loss_epoch([{"epoch": 1, "val_accuracy": 0.2, "val_loss": nan},
                              {"epoch": 2, "val_accuracy": 0.5, "val_loss": 1.0},
                              {"epoch": 3, "val_accuracy": 0.6, "val_loss": float("inf")}]) == 2
    assert lowest_loss_epoch([{"epoch": 1, "val_accuracy": 0.2, "val_loss": nan},
                              {"epoch": 2, "val_accuracy": 0.5, "val_loss": nan}]) == 2


def test_the_curve_reports_each_methods_mean_and_spread_over_seeds_and_no_spread_for_one_run():
    """Three seeds at 50 labels: mean and population s.d. per method; the all-images point is one run (the
    stages' own models, whose validation tail counts): its spread is n/a, never a reassuring ± 0.0."""
    import pandas as pd

    from cnn_pipelines.vision.models.transfer_assets import curve_summary, curve_table

    rows = [{"requested": 50, "seed": s, "labelled_images": 50, "method": m, "test_accuracy": a}
            for m, accs in (("transfer", (0.80, 0.82, 0.84)), ("fine_tuned", (0.81, 0.81, 0.81)),
                            ("scratch", (0.70, 0.60, 0.80)))
            for s, a in enumerate(accs)]
    rows += [{"requested": 900, "seed": 0, "labelled_images": n, "method": m, "test_accuracy": 0.95}
             for m, n in (("transfer", 900), ("fine_tuned", 1000), ("scratch", 1000))]
    table = curve_summary(pd.DataFrame(rows))
    assert list(table.index) == [50, 1000] and list(table["seeds"]) == [3, 1]
    assert abs(table.loc[50, "transfer"] - 0.82) < 1e-12 and abs(table.loc[50, "scratch_sd"] - 0.0816497) < 1e-6
    assert table.loc[1000, ["transfer_sd", "fine_tuned_sd", "scratch_sd"]].isna().all()
    shown = curve_table(table).set_index("labels")
    assert shown.loc[50, "scratch %"] == "70.0 ± 8.2" and shown.loc[1000, "transfer %"] == "95.0"
    assert shown.loc[50, "transfer − scratch, pts"] == 12.0  # which lead it is, in its name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([20, 50, 100]), st.integers(0, 3),
                          st.sampled_from(["transfer", "fine_tuned", "scratch"]), st.floats(0, 1)),
                min_size=1, max_size=30, unique_by=lambda r: r[:3]))
def test_the_curve_summary_is_each_methods_mean_and_spread_over_its_seeds(rows):
    """For any set of points: each (size, method) cell is the mean of that method's seeds, its spread the
    population s.d. when two or more seeds ran and n/a (NaN) for one, and every size shows how many seeds ran."""
    import math

    import pandas as pd

    from cnn_pipelines.vision.models.transfer_assets import curve_summary

    curve = pd.DataFrame([{"requested": n, "seed": s, "labelled_images": n, "method": m, "test_accuracy": a}
                          for n, s, m, a in rows])
    table = curve_summary(curve)
    assert list(table.index) == sorted({n for n, *_ in rows})
    for n in table.index:
        assert table.loc[n, "seeds"] == len({s for m_n, s, *_ in rows if m_n == n})
        for method in ("transfer", "fine_tuned", "scratch"):
            accs = [a for m_n, _, m, a in rows if m_n == n and m == method]
            mean, sd = table.loc[n, method], table.loc[n, f"{method}_sd"]
            if not accs:
                assert math.isnan(mean) and math.isnan(sd)
                continue
            assert abs(mean - np.mean(accs)) < 1e-9
            assert math.isnan(sd) if len(accs) == 1 else abs(sd - np.std(accs)) < 1e-9
