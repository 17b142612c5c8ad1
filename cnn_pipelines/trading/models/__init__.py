"""Models compared with CNN-TA on the same walk-forward folds. Each is one small module exposing a
:class:`~cnn_pipelines.trading.models.base.ModelSpec`; adding one is that module plus a line in ``BASELINES``."""

from cnn_pipelines.trading.models.base import ModelSpec
from cnn_pipelines.trading.models.boosting import HGB
from cnn_pipelines.trading.models.linear import RIDGE

BASELINES: tuple[ModelSpec, ...] = (RIDGE, HGB)

__all__ = ["BASELINES", "ModelSpec"]
