"""What a comparison model is: a name and a fit on one fold's training arrays that returns a predictor.

Every model sees exactly what ``cnn_model`` sees: the fold's selected features as its 15x15 images (flattened to
225 pixels for models without convolutions), the same training rows and cross-sectional z-scored labels, and
the same validation slice, the only data it may use to choose a setting (point in time: all of it is dated
before the fold's cutoff)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_pipelines.trading.evaluation.metrics import daily_ic


@dataclass(frozen=True)
class FoldArrays:
    """One fold's training and validation data (images of shape n x 15 x 15 x 1)."""

    x_train: np.ndarray
    y_train: np.ndarray        # cross-sectional z-scores of the target
    x_val: np.ndarray
    y_val: np.ndarray          # raw target (IC is rank-based)
    val_dates: np.ndarray

    @staticmethod
    def flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float32)


@dataclass
class PixelPredictor:
    """A fitted scikit-learn regressor applied to the flattened images; ``stage``: stop a staged model (boosting)
    after that many iterations. A plain object, not a closure, so it pickles: under a retrain cadence the months
    after a retrain month are predicted by the model fitted there."""

    model: Any
    stage: int | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = FoldArrays.flat(x)
        if self.stage is None:
            return self.model.predict(flat).astype(np.float32)
        for i, scores in enumerate(self.model.staged_predict(flat)):
            if i + 1 == self.stage:
                return scores.astype(np.float32)
        raise ValueError(f"the model has fewer than {self.stage} stages")


@dataclass
class Fitted:
    """A fitted model: ``predict(images) -> scores`` and what was chosen on validation, for the metadata."""

    predict: Callable[[np.ndarray], np.ndarray]
    chosen: dict = field(default_factory=dict)
    validation: list[dict] = field(default_factory=list)   # one row per candidate setting


@dataclass(frozen=True)
class ModelSpec:
    name: str                  # lake table <name>_predictions, "model" column of model_predictions
    description: str
    fit: Callable[[FoldArrays, int], Fitted]


def validation_ic(arrays: FoldArrays, scores: np.ndarray) -> float:
    """Mean daily rank IC on the fold's validation slice (NaN when no day has enough names)."""
    ic = daily_ic(arrays.val_dates, scores, arrays.y_val)
    return float(ic.mean()) if len(ic) else float("nan")


def best(rows: list[dict]) -> dict:
    """The candidate with the highest validation IC (the first on ties; NaN never wins)."""
    finite = [r for r in rows if np.isfinite(r["val_ic"])]
    return max(finite, key=lambda r: r["val_ic"]) if finite else rows[0]
