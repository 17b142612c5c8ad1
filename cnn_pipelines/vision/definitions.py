"""The vision graphs' Dagster wiring: image datasets (group vision_datasets) feeding model checkpoints
(group vision_models), and the job that materializes both."""

from __future__ import annotations

import dagster as dg

from cnn_pipelines.cluster import TRAINS

from cnn_pipelines.vision.datasets.assets import dataset_asset
from cnn_pipelines.vision.datasets.catalog import available_datasets
from cnn_pipelines.vision.models.assets import filters_asset, model_asset
from cnn_pipelines.vision.datasets.house_number_assets import house_number_spec, house_numbers_asset
from cnn_pipelines.vision.models.house_number_assets import reader_asset
from cnn_pipelines.vision.models.catalog import model_specs, transfer_specs
from cnn_pipelines.vision.models.transfer_assets import transfer_assets
from cnn_pipelines.vision.settings import vision_settings

SETTINGS = vision_settings()
DATASETS = available_datasets(SETTINGS)
MODELS = model_specs(DATASETS, SETTINGS.online)
CHAINS = transfer_specs(DATASETS, SETTINGS.online)
HOUSE_NUMBERS = house_number_spec(SETTINGS.online)

vision_job = dg.define_asset_job(
    "vision_job",
    selection=dg.AssetSelection.groups("vision_datasets", "vision_models", "vision_transfer"),
    description="Image datasets and the chapter's image models: LeNet-5, the CIFAR CNN, the filter demo, "
                "transfer learning chains and the multi-digit house-number reader.",
    # One process, one step at a time: each training uses every core, two at once only fight over them, and
    # TensorFlow is imported once instead of once per step.
    executor_def=dg.in_process_executor,
    tags=TRAINS,
)

# What `make run` trains: demo sizes (about a minute on 2 cores). The assets' defaults use all the data.
DEMO_RUN_CONFIG = {"ops": {
    **{m.name: {"config": m.demo} for m in MODELS},
    **{f"{c.name}__{stage}": {"config": cfg} for c in CHAINS for stage, cfg in c.demo.items()},
    "house_numbers": {"config": HOUSE_NUMBERS.demo["dataset"]},
    "house_number_reader": {"config": HOUSE_NUMBERS.demo["reader"]},
}}

defs = dg.Definitions(
    assets=[*(dataset_asset(d, SETTINGS) for d in DATASETS.values()),
            *(model_asset(m, DATASETS[m.dataset], SETTINGS) for m in MODELS), filters_asset(SETTINGS),
            *(a for c in CHAINS for a in transfer_assets(c, DATASETS[c.dataset], SETTINGS)),
            house_numbers_asset(HOUSE_NUMBERS, DATASETS.get("mnist"), SETTINGS), reader_asset(HOUSE_NUMBERS, SETTINGS)],
    jobs=[vision_job],
)
