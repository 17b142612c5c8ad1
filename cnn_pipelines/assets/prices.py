"""raw_prices: validated daily bars per weekday partition, from the configured price source."""


import datetime as dt

import dagster as dg
import pandas as pd

from cnn_pipelines.calendar import to_date
from cnn_pipelines.checks import price_check_results
from cnn_pipelines.partitions import weekday_partitions
from cnn_pipelines.resources import PriceSource
from cnn_pipelines.validation import validate_prices

RAW_PRICES_CHECKS = [
    dg.AssetCheckSpec("schema", asset="raw_prices", description="Canonical columns and dtypes"),
    dg.AssetCheckSpec("unique_date_ticker", asset="raw_prices", description="No duplicate (date, ticker) rows"),
    dg.AssetCheckSpec("price_sanity", asset="raw_prices", description="Positive prices, low <= open/close <= high, volume >= 0"),
]


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date, list[str]]:
    """First and last date covered by the run's partitions, and the keys themselves."""
    keys = list(context.partition_keys)
    return to_date(keys[0]), to_date(keys[-1]), keys


def _preview(df: pd.DataFrame, n: int = 8) -> str:
    return df.head(n).to_markdown(index=False) if len(df) else "_empty (holiday or no data)_"


@dg.asset(
    partitions_def=weekday_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="lake",
    check_specs=RAW_PRICES_CHECKS,
    group_name="trading",
    kinds={"parquet", "pandas"},
)
def raw_prices(context: dg.AssetExecutionContext, prices: PriceSource):
    """Daily split/dividend-adjusted OHLCV bars, validated (see validation.py) before anything is written."""
    start, end, keys = partition_dates(context)
    fetched = prices.fetch(start, end)
    missing = list(fetched.attrs.get("missing_tickers", []))
    if missing:
        context.log.warning(f"{len(missing)} tickers returned no data: {missing[:20]}")
    clean, report = validate_prices(fetched, source=prices.description)
    repaired = {k: v for k, v in report.repairs.items() if v}
    if repaired:
        context.log.info(f"repairs applied: {repaired}")
    dates = pd.to_datetime(clean["date"]) if len(clean) else pd.Series(dtype="datetime64[ns]")
    yield dg.Output(
        clean,
        metadata={
            "rows": len(clean),
            "tickers": int(clean["ticker"].nunique()),
            "partitions": len(keys),
            "first_date": str(dates.min().date()) if len(clean) else "",
            "last_date": str(dates.max().date()) if len(clean) else "",
            "source": prices.description,
            "repairs": dg.MetadataValue.json(report.repairs),
            "tickers_without_data": dg.MetadataValue.json(missing),
            "preview": dg.MetadataValue.md(_preview(clean)),
        },
    )
    yield from price_check_results(clean)
