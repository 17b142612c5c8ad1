"""cnn-pipelines: CNNs on time series as images (Jansen, ML for Algorithmic Trading, ch. 18) as Dagster pipelines."""

import os
import warnings

# TensorFlow reads this once, at import. Left unset, TF only uses oneDNN's convolution, pooling and dense
# kernels on CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2 CPUs (this project's 2-core AMD EPYC) it falls back
# to Eigen, and the CNN trains 2x slower (5.9k vs 12k samples/s, measured). Set it to 0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TF's INFO lines at import (oneDNN, CPU features) are noise in every Dagster process; warnings still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# Dagster warns at every import that two parameters this project relies on are beta, and that nightly_job mixes
# backfill policies (it then runs one partition per run, which is what a nightly run is). Silenced by message,
# so every other warning still shows.
warnings.filterwarnings("ignore", message=r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)` "
                                          r"of .* is currently in beta")
warnings.filterwarnings("ignore", message=r"Asset job nightly_job materializes assets with varying BackfillPolicies")

__all__ = ["defs"]


def __getattr__(name: str):
    """``cnn_pipelines.defs`` (what workspace.yaml and ``-m cnn_pipelines`` load) is built on first access, so
    importing a submodule (the lake, the instance CLI of ``make install``, a benchmark) does not import
    TensorFlow and every asset."""
    if name == "defs":
        from cnn_pipelines.definitions import defs

        return defs
    raise AttributeError(f"module 'cnn_pipelines' has no attribute {name!r}")


def __dir__() -> list[str]:
    # `dagster ... -m cnn_pipelines` without `-a` finds Definitions through inspect.getmembers, i.e. dir()
    return sorted([*globals(), "defs"])
