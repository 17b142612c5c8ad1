"""cnn-pipelines: CNNs on time series as images (Jansen, ML for Algorithmic Trading, ch. 18) as Dagster pipelines."""

import os

# TensorFlow reads this once, at import. Left unset, TF only uses oneDNN's convolution, pooling and dense
# kernels on CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2 CPUs (this project's 2-core AMD EPYC) it falls back
# to Eigen, and the CNN trains 2x slower (5.9k vs 12k samples/s, measured). Set it to 0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TF's INFO lines at import (oneDNN, CPU features) are noise in every Dagster process; warnings still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# Imported eagerly: `dagster ... -m cnn_pipelines` (without -a) finds the Definitions among the module's
# attributes, which a lazy attribute would hide.
from cnn_pipelines.definitions import defs  # noqa: E402

__all__ = ["defs"]
