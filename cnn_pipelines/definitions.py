"""The project's single Definitions object (loaded by workspace.yaml and the CLI as ``cnn_pipelines``): the
trading graph and the vision graphs, side by side."""

from __future__ import annotations

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)

from cnn_pipelines.trading.definitions import defs as trading_defs  # noqa: E402
from cnn_pipelines.vision.definitions import defs as vision_defs  # noqa: E402

# Every run executes its steps in the run's own process: a step subprocess would re-import TensorFlow and the
# definitions (~8 s each), and the assets parallelize inside (TF, NumPy threads) on a 2-core machine anyway.
defs = dg.Definitions.merge(trading_defs, vision_defs, dg.Definitions(executor=dg.in_process_executor))
