"""Vision-graph settings: where image datasets come from (offline files or tfds downloads) and where the
datasets and checkpoints live in the lake. Read once, when the code location loads."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from cnn_pipelines.settings_file import project_env
from cnn_pipelines.storage import lake, objects

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist


@dataclass(frozen=True)
class VisionSettings:
    """``online`` (the ``full`` preset): datasets download through tfds. Otherwise nothing is downloaded:
    the datasets are built from real images that ship with packages (see ``datasets/catalog.py``)."""

    online: bool
    lake_root: Path
    fashion_mnist_dir: Path = DEBIAN_FASHION_MNIST

    @property
    def data_dir(self) -> Path:
        """tfds ``data_dir``: every dataset in tfds's own format (``<name>/<version>/``)."""
        return lake.artifact_dir(self.lake_root, "datasets")  # local (a mirror when the lake is on S3)

    @property
    def download_dir(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def models_dir(self) -> Path:
        return lake.artifact_dir(self.lake_root, "vision_models")


def vision_settings(env: dict[str, str] | None = None) -> VisionSettings:
    """$CNN_PRESET=full downloads through tfds; $CNN_FASHION_MNIST_DIR overrides the Debian IDX folder."""
    env = project_env(env)
    return VisionSettings(
        online=env.get("CNN_PRESET", "demo") == "full",
        lake_root=lake.as_root(env.get("CNN_LAKE_ROOT") or lake.default_root()),
        fashion_mnist_dir=Path(env.get("CNN_FASHION_MNIST_DIR") or DEBIAN_FASHION_MNIST),
    )


def synced(s: VisionSettings):
    """Decorate a vision asset's function so that, with the lake on object storage, it starts from what the
    bucket holds (datasets and models written on other machines are pulled into this one's mirror) and ends
    with what it wrote uploaded: the vision graphs then run across machines like the trading graph. Nothing
    for a local lake."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if not objects.is_remote(s.lake_root):
                return fn(*args, **kwargs)
            for folder in (s.data_dir, s.models_dir):
                objects.pull(folder)
            try:
                return fn(*args, **kwargs)
            finally:  # a failed step's finished files (a dataset, epochs) are kept too, as on a local lake
                for folder in (s.data_dir, s.models_dir):
                    objects.push_tree(folder)
        return run
    return wrap
