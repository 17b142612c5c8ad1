"""The trading graph's Dagster wiring: its assets, jobs, schedule, sensor, checks and resources."""

from __future__ import annotations

import dagster as dg

from cnn_pipelines.cluster import TRAINS
from cnn_pipelines.storage import lake
from cnn_pipelines.trading.evaluation.assets import backtest, factor_tearsheet, leakage_audit, model_leaderboard
from cnn_pipelines.trading.evaluation.study_assets import study_report
from cnn_pipelines.trading.research.model_assets import MODEL_PREDICTIONS
from cnn_pipelines.trading.features.assets import forward_returns, indicator_panel, labels_fill_in_sensor, universe
from cnn_pipelines.trading.prices.assets import price_adjustments, raw_prices
from cnn_pipelines.trading.production.assets import daily_signals, nightly_job, nightly_schedule, production_model
from cnn_pipelines.trading.research.assets import (
    cnn_images, cnn_model, feature_selection, image_layout, oos_predictions, research_partitions,
)
from cnn_pipelines.trading.prices.checks import make_freshness_check
from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
from cnn_pipelines.trading.partitions import weekday_partitions
from cnn_pipelines.trading.prices.resources import price_source_from_env

LAKE_ROOT = str(lake.default_root())

trading_job = dg.define_asset_job(
    "trading_job",
    selection=dg.AssetSelection.groups("trading"),
    partitions_def=weekday_partitions,
    description="The trading graph over a range of weekday partitions (one run per range).",
)

research_job = dg.define_asset_job(
    "research_job",
    selection=dg.AssetSelection.groups("research"),
    partitions_def=research_partitions,
    tags=TRAINS,
    description="One walk-forward period: selection, layout, images, CNN training, out-of-sample predictions.",
)

evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=dg.AssetSelection.groups("evaluation") - dg.AssetSelection.assets(leakage_audit),
    description="Tearsheet and backtest over every materialized walk-forward period.",
)

audit_job = dg.define_asset_job(
    "audit_job",
    selection=dg.AssetSelection.assets(leakage_audit),
    tags=TRAINS,
    description="The leakage audit: the real pipeline on null, planted-signal and planted-leak markets (minutes).",
)

price_history_job = dg.define_asset_job(
    "price_history_job",
    selection=dg.AssetSelection.assets(raw_prices, price_adjustments),
    partitions_def=weekday_partitions,
    description="raw_prices and its corporate actions: bootstraps the look-back history the feature assets need.",
)

defs = dg.Definitions(
    assets=[raw_prices, price_adjustments, universe, indicator_panel, forward_returns,
            feature_selection, image_layout, cnn_images, cnn_model, oos_predictions, *MODEL_PREDICTIONS,
            factor_tearsheet, backtest, model_leaderboard, study_report, leakage_audit, production_model, daily_signals],
    schedules=[nightly_schedule],
    sensors=[labels_fill_in_sensor],
    asset_checks=[make_freshness_check(LAKE_ROOT, weekday_partitions)],
    jobs=[trading_job, price_history_job, research_job, evaluation_job, audit_job, nightly_job],
    resources={
        "lake": ParquetLakeIOManager(root=LAKE_ROOT),
        "prices": price_source_from_env(),
    },
)
