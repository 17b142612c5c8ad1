"""Weekday date partitions for the trading graph (no empty weekend partitions; holidays are empty)."""

from __future__ import annotations

import os

import dagster as dg

PARTITIONS_START = os.environ.get("CNN_PARTITIONS_START", "2012-01-02")

weekday_partitions = dg.TimeWindowPartitionsDefinition(
    start=PARTITIONS_START,
    cron_schedule="0 0 * * 1-5",
    fmt="%Y-%m-%d",
)
