"""Vision tests never reach a download host: an offline ``tfds.load`` retries for minutes instead of failing.
Every test here fails fast if anything asks tfds's download manager or its GCS bucket for data."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from cnn_pipelines.vision.settings import VisionSettings


def refuse_downloads(monkeypatch) -> None:
    """Make tfds's download manager raise and its GCS probe say no (a module fixture calls it with its own
    MonkeyPatch)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a vision test tried to download: {args[1:] or kwargs}")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", refuse)
    monkeypatch.setattr("tensorflow_datasets.core.utils.gcs_utils.is_dataset_on_gcs", lambda *a, **k: False)
    tfds.disable_progress_bar()


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    refuse_downloads(monkeypatch)


@pytest.fixture
def vision_lake(tmp_path) -> VisionSettings:
    """Offline settings on an empty lake, with no Fashion-MNIST folder unless a test writes one."""
    return VisionSettings(online=False, lake_root=tmp_path / "lake", fashion_mnist_dir=tmp_path / "fashion-mnist")
