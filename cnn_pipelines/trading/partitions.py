"""Weekday date partitions for the trading graph (no empty weekend partitions; holidays are empty).

Where they start never depends on today's date, so a materialized partition stays in the definition:
``partitions_start`` in cnn_pipelines.yaml (or $CNN_PARTITIONS_START) where set; otherwise, for a folder of
price files, the first weekday the files hold (the partitions follow the data they are given); otherwise
2012-01-02, where the embedded synthetic market begins.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from cnn_pipelines.settings_file import project_env

DEMO_DAYS = 520          # make run's default feature range (weekdays); the Makefile's DEMO_DAYS
FIXED_START = "2012-01-02"


def default_start(env: dict[str, str] | None = None) -> str:
    """The first weekday partition (see the module docstring)."""
    env = project_env(env)
    if env.get("CNN_PARTITIONS_START"):
        return str(pd.Timestamp(env["CNN_PARTITIONS_START"]).date())
    if env.get("CNN_PRICE_SOURCE", "synthetic").strip().lower() == "files" and env.get("CNN_PRICE_FILES"):
        from cnn_pipelines.trading.prices.resources import price_source_from_env

        try:
            coverage = price_source_from_env(env).coverage()
        except (OSError, ValueError):
            coverage = None  # no files yet: the run itself will say so
        if coverage:
            first = pd.Timestamp(coverage[0])
            return str((first if first.dayofweek < 5 else first + pd.offsets.BDay(1)).date())
    return FIXED_START


def first_research_period(weekday_start: str, price_lookback: int, train_months: int, floor: str) -> str:
    """The first month whose whole training window can have features: ``price_lookback`` weekdays after the
    partitions start, plus ``train_months``; never before ``floor`` (the preset's first period)."""
    first_feature = pd.Timestamp(weekday_start) + pd.offsets.BDay(price_lookback)
    first = (first_feature + pd.offsets.MonthBegin(1) + pd.DateOffset(months=train_months)).strftime("%Y-%m-01")
    return max(first, floor)


PARTITIONS_START = default_start()

weekday_partitions = dg.TimeWindowPartitionsDefinition(
    start=PARTITIONS_START,
    cron_schedule="0 0 * * 1-5",
    fmt="%Y-%m-%d",
)
