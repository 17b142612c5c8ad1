"""cnn-pipelines: CNNs on time series as images (Jansen, ML for Algorithmic Trading, ch. 18) as Dagster pipelines."""

from cnn_pipelines.definitions import defs

__all__ = ["defs"]
