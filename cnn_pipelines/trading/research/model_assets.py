"""The comparison models' walk-forward predictions: one ``<model>_predictions`` asset per model in
``trading.models.BASELINES``, on the same periods, selected features, image layout and training rows as
``cnn_model``, scoring the same test images as ``oos_predictions``."""


import pickle
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_output, inline, table_value
from cnn_pipelines.plots import rounded
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.models import BASELINES, ModelSpec
from cnn_pipelines.storage import lake as lake_files
from cnn_pipelines.storage import objects
from cnn_pipelines.storage.checkpoints import save_keras
from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
from cnn_pipelines.trading.evaluation.leaderboard import month_trade_returns
from cnn_pipelines.trading.models.autoregressive import MIN_SAMPLES as AR_MIN_SAMPLES
from cnn_pipelines.trading.models.autoregressive import ArSettings, ar_fold, fit_ar, predict_ar, too_few_samples
from cnn_pipelines.trading.models.base import Fitted, FoldArrays
from cnn_pipelines.trading.features.assets import SETTINGS
from cnn_pipelines.trading.features.panel import universe_table
from cnn_pipelines.trading.research.assets import (
    RESEARCH_ASSET, RS, _load, _window, period_arrays, period_seed, retrain_plan,
)
from cnn_pipelines.trading.research.periods import images_from_table

CNN_MODEL = "cnn_ta"  # the name oos_predictions goes by in model_predictions and the leaderboard


def predictions_table(images: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """oos_predictions' columns: date, ticker, period, prediction and the realized labels."""
    keep = ["date", "ticker", "period", *[c for c in images.columns if c.startswith("fwd_")]]
    out = images[keep].copy()
    out.insert(3, "prediction", np.asarray(scores, dtype=np.float32))
    return out


def fitted_path(root, model: str, period: str, name: str = "fitted.pkl") -> Path:
    """Where a comparison model fitted for retrain month ``period`` is kept (under the lake's models folder)."""
    return lake_files.artifact_dir(root, "models", model, period) / name


def anchor_model_missing(model: str, anchor: str) -> lake_files.MissingPartitionsError:
    return lake_files.MissingPartitionsError(f"{model}_predictions", [
        f"{anchor} (retrain_every={RS.retrain_every}: its {model} model predicts this month); materialize "
        f"research_job for {anchor} first"])


def model_predictions_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(name=f"{spec.name}_predictions", description=f"Walk-forward predictions of {spec.description}.",
              ins={"indicator_panel": _window("indicator_panel"), "forward_returns": _window("forward_returns")},
              **{**RESEARCH_ASSET, "kinds": {"scikit-learn", "parquet"}})
    def _predictions(context: dg.AssetExecutionContext, image_layout: dict, cnn_images: pd.DataFrame,
                     indicator_panel: pd.DataFrame, forward_returns: pd.DataFrame,
                     lake: dg.ResourceParam[ParquetLakeIOManager]):
        """Fitted in each retrain month (every month by default) and kept; the months between retrains are
        predicted by their retrain month's model, as cnn_model's are."""
        period, fold, data = _load(context, indicator_panel, forward_returns)
        anchor, _ = retrain_plan(period)
        t0 = time.perf_counter()
        if anchor == period:
            arrays = FoldArrays(*period_arrays(context, data, image_layout))  # built once per period, shared
            fitted = spec.fit(arrays, period_seed(period))
            lake_files.write_bytes(fitted_path(lake.root, spec.name, period), pickle.dumps(fitted))
            train_rows = int(len(arrays.x_train))
        else:
            path = fitted_path(lake.root, spec.name, anchor)
            objects.pull(path)  # fitted on another machine of a cluster
            if not path.exists():
                raise anchor_model_missing(spec.name, anchor)
            fitted: Fitted = pickle.loads(path.read_bytes())
            train_rows = 0
        out = predictions_table(cnn_images, fitted.predict(images_from_table(cnn_images)))
        ic, se, days = oos_ic(out, RS.target)
        context.log.info(f"{spec.name} {period}: model of {anchor}, chosen {fitted.chosen}, test IC {ic:+.4f} "
                         f"over {days} days")
        return asset_output(context, out, {
            "period": period, "cutoff": str(fold.cutoff), "model": spec.name, "rows": len(out),
            "model_period": anchor, "retrain_month": anchor == period,
            "train_rows": train_rows, "fit_seconds": round(time.perf_counter() - t0, 2),
            "chosen_on_validation": inline({k: (rounded(v, 4) if isinstance(v, float) else v)
                                                           for k, v in fitted.chosen.items()}),
            "validation": table_value(pd.DataFrame(fitted.validation).round(4)),
            "mean_daily_ic": rounded(ic, 4, "n/a (no realized labels yet)"),
            "ic_standard_error": rounded(se, 4, "n/a (fewer than two days)"), "ic_days": days,
        })

    return _predictions


AR = ArSettings()


def _months_window(asset: str) -> dg.AssetIn:
    """``asset`` (weekday partitions) over the months ar_cnn needs: its lags and training months before P."""
    return dg.AssetIn(asset, partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-(RS.train_months + AR.lags + 2), end_offset=0, allow_nonexistent_upstream_partitions=True))


@dg.asset(ins={"raw_prices": _months_window("raw_prices")}, **{**RESEARCH_ASSET, "kinds": {"keras", "parquet"}})
def ar_cnn_predictions(context: dg.AssetExecutionContext, cnn_images: pd.DataFrame, raw_prices: pd.DataFrame,
                       lake: dg.ResourceParam[ParquetLakeIOManager]):
    """Notebook 04's autoregressive 1-D CNN on monthly returns (last 12 months plus the calendar month), fitted
    on months whose next-month return was realized before the period's cutoff and held for the test month.
    Fitted in each retrain month and kept; the months between retrains use their retrain month's model."""
    from cnn_pipelines.trading.research.walkforward import fold_for
    from cnn_pipelines.trading.research.assets import CALENDAR

    period = context.partition_key
    fold = fold_for(period, RS, CALENDAR)
    P = pd.Period(period, "M")
    # The universe at each month end, by the universe asset's own point-in-time rule, from the same prices: the
    # feature tables start only a training window before the first test month, the lags reach further back.
    first = min(raw_prices["date"])
    universe = universe_table(raw_prices, SETTINGS, first, max(raw_prices["date"]))
    f = ar_fold(raw_prices, universe, period, fold.cutoff, RS.train_months, AR)
    train, months = f.train, f.months
    t0 = time.perf_counter()
    anchor, _ = retrain_plan(period)
    path = fitted_path(lake.root, "ar_cnn", anchor, "model.keras")
    status = fitted_path(lake.root, "ar_cnn", anchor, "fit.json")  # whether the retrain month could fit, and why
    model, not_fitted = None, None
    if anchor == period:
        if len(train[0]) < AR_MIN_SAMPLES:  # a small universe: a comparison model that cannot fit predicts nothing
            not_fitted = too_few_samples(train)
        else:
            model = fit_ar(train, AR, period_seed(period))
            save_keras(model, path)
        lake_files.write_json(status, {"fitted": model is not None, "why": not_fitted})
    else:
        import keras

        objects.pull(status)
        objects.pull(path)  # fitted on another machine of a cluster
        doc = lake_files.read_json(status) if status.exists() else {}
        if doc.get("fitted") is False:
            not_fitted = f"the model of retrain month {anchor} was not fitted: {doc['why']}"
        elif not path.exists():
            raise anchor_model_missing("ar_cnn", anchor)
        else:
            model = keras.models.load_model(path)
    if not_fitted:
        context.log.warning(f"{not_fitted}. ar_cnn predicts nothing for {period}; the leaderboard leaves it out")
    pred = predict_ar(model, f.inputs) if model is not None else np.full(len(f.tickers), np.nan, np.float32)
    by_ticker = pd.Series(pred, index=f.tickers, dtype="float32")
    out = predictions_table(cnn_images, cnn_images["ticker"].astype(str).map(by_ticker).to_numpy(np.float32))
    ic, se, days = oos_ic(out.dropna(subset=["prediction"]), RS.target)
    sessions = CALENDAR.sessions(min(raw_prices["date"]), P.end_time.date())
    realized = month_trade_returns(raw_prices, P, pd.DatetimeIndex(sessions))  # first open to last open of P
    monthly_ic = float("nan")
    if len(realized) and len(by_ticker) >= 3:
        pair = pd.DataFrame({"p": by_ticker, "y": realized.reindex(by_ticker.index)}).dropna()
        monthly_ic = float(pair["p"].rank().corr(pair["y"].rank())) if len(pair) >= 3 else float("nan")
    context.log.info(f"ar_cnn {period}: {len(train[0])} training samples, daily IC {ic:+.4f}, monthly IC {monthly_ic:+.4f}")
    scores = {"rows_without_history": int(out["prediction"].isna().sum()),
              "mean_daily_ic": rounded(ic, 4, "n/a (no realized labels yet)"),
              "ic_standard_error": rounded(se, 4, "n/a (fewer than two days)"),
              "monthly_ic": rounded(monthly_ic, 4, "n/a (the month has not ended in the lake)")}
    if model is None:
        scores = dict.fromkeys(scores, "n/a (not fitted: see fitted)")
    return asset_output(context, out, {
        "period": period, "cutoff": str(fold.cutoff), "model": "ar_cnn", "lags": AR.lags,
        "fitted": "yes" if model is not None else f"no: {not_fitted}",
        "model_period": anchor, "retrain_month": anchor == period,
        "training_months": (f"{months[0]} .. {months[-1]} (targets through {months[-1] + 1})" if anchor == period
                            else f"none this month: the model fitted for {anchor}"),
        "train_samples": int(len(train[0])) if anchor == period else 0, "predicted_tickers": int(by_ticker.notna().sum()),
        "fit_seconds": round(time.perf_counter() - t0, 2), **scores,
    })


MODEL_PREDICTIONS = [*(model_predictions_asset(spec) for spec in BASELINES), ar_cnn_predictions]

# model -> lake table, CNN-TA first: what model_predictions (a DuckDB view) and model_leaderboard read
PREDICTION_TABLES = {CNN_MODEL: "oos_predictions", **{s.name: f"{s.name}_predictions" for s in BASELINES},
                     "ar_cnn": "ar_cnn_predictions"}
MONTHLY_MODELS = frozenset({"ar_cnn"})  # one prediction per name and month: the leaderboard adds a monthly IC
