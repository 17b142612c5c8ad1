"""The comparison models' walk-forward predictions: one ``<model>_predictions`` asset per model in
``trading.models.BASELINES``, on the same periods, selected features, image layout and training rows as
``cnn_model``, scoring the same test images as ``oos_predictions``."""


import time

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.plots import rounded, table_markdown
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.models import BASELINES, ModelSpec
from cnn_pipelines.trading.models.base import FoldArrays
from cnn_pipelines.trading.research.assets import RESEARCH_ASSET, RS, _load, _window, period_seed
from cnn_pipelines.trading.research.layout import ImageLayout
from cnn_pipelines.trading.research.periods import images_from_table, training_arrays

CNN_MODEL = "cnn_ta"  # the name oos_predictions goes by in model_predictions and the leaderboard


def predictions_table(images: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """oos_predictions' columns: date, ticker, period, prediction and the realized labels."""
    keep = ["date", "ticker", "period", *[c for c in images.columns if c.startswith("fwd_")]]
    out = images[keep].copy()
    out.insert(3, "prediction", np.asarray(scores, dtype=np.float32))
    return out


def model_predictions_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(name=f"{spec.name}_predictions", description=f"Walk-forward predictions of {spec.description}.",
              ins={"indicator_panel": _window("indicator_panel"), "forward_returns": _window("forward_returns")},
              **{**RESEARCH_ASSET, "kinds": {"scikit-learn", "parquet"}})
    def _predictions(context: dg.AssetExecutionContext, image_layout: dict, cnn_images: pd.DataFrame,
                     indicator_panel: pd.DataFrame, forward_returns: pd.DataFrame):
        period, fold, data = _load(context, indicator_panel, forward_returns)
        arrays = FoldArrays(*training_arrays(data, ImageLayout.from_json(image_layout), RS))
        t0 = time.perf_counter()
        fitted = spec.fit(arrays, period_seed(period))
        out = predictions_table(cnn_images, fitted.predict(images_from_table(cnn_images)))
        ic, se, days = oos_ic(out, RS.target)
        context.log.info(f"{spec.name} {period}: chosen {fitted.chosen}, test IC {ic:+.4f} over {days} days")
        return dg.Output(out, metadata={
            "period": period, "cutoff": str(fold.cutoff), "model": spec.name, "rows": len(out),
            "train_rows": int(len(arrays.x_train)), "fit_seconds": round(time.perf_counter() - t0, 2),
            "chosen_on_validation": dg.MetadataValue.json({k: (float(v) if isinstance(v, float) else v)
                                                           for k, v in fitted.chosen.items()}),
            "validation": dg.MetadataValue.md(table_markdown(pd.DataFrame(fitted.validation), 4)),
            "mean_daily_ic": rounded(ic, 4, "n/a (no realized labels yet)"),
            "ic_standard_error": rounded(se, 4, "n/a (fewer than two days)"), "ic_days": days,
        })

    return _predictions


MODEL_PREDICTIONS = [model_predictions_asset(spec) for spec in BASELINES]

# model -> lake table, CNN-TA first: what model_predictions (a DuckDB view) and model_leaderboard read
PREDICTION_TABLES = {CNN_MODEL: "oos_predictions", **{s.name: f"{s.name}_predictions" for s in BASELINES}}
