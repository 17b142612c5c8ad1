"""Weekday date partitions for the trading graph (no empty weekend partitions; holidays are empty).

Where they start: ``$CNN_PARTITIONS_START`` if set. Otherwise, on the embedded synthetic market with the demo
preset, where the demo's own history begins (the first weekday of the month that holds the first raw_prices
partition `make run` needs), so the UI's fill ratios describe the demo rather than a decade it never builds;
the start moves forward a month at a time with today's date. Any other source or preset starts in 2012.
Widen with e.g. ``CNN_PARTITIONS_START=2012-01-02 DEMO_DAYS=1000 make run``.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import pandas as pd

DEMO_DAYS = 520          # make run's default feature range (weekdays); the Makefile's DEMO_DAYS
FIXED_START = "2012-01-02"


def demo_history_start(today: dt.date, feature_days: int, price_lookback: int) -> str:
    """First weekday of the month that holds the first raw_prices partition of a ``feature_days`` range ending
    today, with ``price_lookback`` weekdays of price history before it (and a month to spare)."""
    first = pd.Timestamp(today) - pd.offsets.BDay(feature_days + price_lookback + 21)
    return (first - pd.offsets.MonthBegin(1) if first.day > 1 else first).strftime("%Y-%m-01")


def default_start(env: dict[str, str] | None = None, today: dt.date | None = None) -> str:
    env = dict(os.environ if env is None else env)
    if env.get("CNN_PARTITIONS_START"):
        return env["CNN_PARTITIONS_START"]
    synthetic = env.get("CNN_PRICE_SOURCE", "synthetic").strip().lower() == "synthetic"
    if not synthetic or env.get("CNN_PRESET", "demo") != "demo":
        return FIXED_START
    from cnn_pipelines.trading.settings import PRESETS

    return demo_history_start(today or dt.date.today(), DEMO_DAYS, PRESETS["demo"].price_lookback)


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
