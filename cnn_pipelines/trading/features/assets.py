"""Feature assets: universe, indicator_panel and forward_returns, each over weekday partitions with a
look-back (and, for targets, look-ahead) window on raw_prices."""

import datetime as dt

import dagster as dg
import pandas as pd

from cnn_pipelines.metadata import asset_output, listed, percent, short_list, table_value
from cnn_pipelines.trading.prices.assets import partition_dates
from cnn_pipelines.trading.features.reports import universe_turnover
from cnn_pipelines.trading.features.panel import feature_columns, forward_returns_table, target_columns, universe_table
from cnn_pipelines.trading.features.sharding import spool_panel
from cnn_pipelines.trading.partitions import weekday_partitions
from cnn_pipelines.trading.partition_metadata import report
from cnn_pipelines.plots import heatmap, line_plot, markdown_image
from cnn_pipelines.trading.settings import current_settings

SETTINGS = current_settings()


def _prices_window(start_offset: int, end_offset: int = 0) -> dg.AssetIn:
    """raw_prices from ``start_offset`` weekdays before the partitions to ``end_offset`` after them. The
    look-ahead part may be partly missing: at the live edge (or past the end of a historical range) those
    bars have not landed, and the labels that need them stay unrealized (NaN) until they do."""
    return dg.AssetIn(
        "raw_prices",
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=start_offset, end_offset=end_offset, allow_nonexistent_upstream_partitions=True
        ),
        metadata={"lookahead": end_offset},
    )


FEATURE_ASSET = dict(
    partitions_def=weekday_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="lake",
    group_name="trading",
    kinds={"parquet", "pandas"},
)


@dg.asset(ins={"raw_prices": _prices_window(-SETTINGS.universe_lookback)}, **FEATURE_ASSET)
def universe(context: dg.AssetExecutionContext, raw_prices: pd.DataFrame):
    """Top-N tickers by median dollar volume over a trailing window that ends the day before each date."""
    start, end, _ = partition_dates(context)
    table = universe_table(raw_prices, SETTINGS, start, end)
    turnover = universe_turnover(table)
    meta = {
        "universe_size": SETTINGS.universe_size,
        "window_days": SETTINGS.universe_window,
        "mean_members_per_day": round(float(table.groupby("date").size().mean()), 1) if len(table) else 0.0,
        "turnover_pct_per_day": percent(turnover.mean(), 1) if len(turnover) else 0.0,
    }
    untraded = [f"{t} ({n} d)" for t, n in sorted(table.attrs.get("untraded", {}).items())]
    if untraded:
        context.log.warning(f"{len(untraded)} ticker(s) kept out of the universe on days when they had not traded on "
                            f"most days of the window before (median dollar volume 0: volume 0 on half or more of its "
                            f"bars, as vendors write a suspended name's repeated close): {listed(untraded)}")
    meta["untraded_tickers"] = short_list(untraded)
    if table.attrs.get("no_volume_days"):
        context.log.warning(f"on {table.attrs['no_volume_days']} day(s) no ticker had traded volume in the window "
                            f"before (the prices carry volume 0): dollar volume cannot rank them, so every name with "
                            f"enough bars is a member, up to universe_size in ticker order")
    if len(turnover) > 2:
        meta["turnover"] = dg.MetadataValue.md(markdown_image(
            line_plot(100 * turnover, "Daily universe turnover (new members, % of the universe)", "%"), "turnover"))
    return asset_output(context, table, report(context, table, meta))


@dg.asset(ins={"raw_prices": _prices_window(-SETTINGS.price_lookback)}, **FEATURE_ASSET)
def indicator_panel(context: dg.AssetExecutionContext, raw_prices: pd.DataFrame):
    """15 technical families x 15 look-backs + 5 factor betas x 15 windows (300 float32 columns) for each
    universe member with a bar on the date; past data only."""
    start, end, _ = partition_dates(context)
    # Shard by shard (SETTINGS.shard_tickers names at a time, in parallel processes where there are cores) into a
    # spool the lake commits month by month: memory grows with the shard, not the universe.
    spool, summary, workers = spool_panel(raw_prices, SETTINGS, start, end)
    meta = {"feature_columns": len(feature_columns(SETTINGS)),
            "computed_in": f"{summary.shards} shard(s) of at most {SETTINGS.shard_tickers} tickers (CNN_PANEL_SHARD), "
                           f"{workers} process(es) (CNN_PANEL_WORKERS)"}
    nan_share = summary.nan_share()
    if len(nan_share) and (nan_share > 0).any():
        meta["missing_by_family"] = table_value(pd.DataFrame({
            "family": nan_share.index.astype(str), "missing %": (100 * nan_share.astype(float)).round(2).to_numpy()}))
    elif len(nan_share):  # twenty rows of 0 said less than this line
        meta["missing_by_family"] = dg.MetadataValue.text("none: every family has a value in every row")
    corr = summary.correlation()
    if not corr.empty:
        meta["family_correlation"] = dg.MetadataValue.md(markdown_image(
            heatmap(corr, "Average cross-sectional rank correlation between families"), "family correlation"))
    return asset_output(context, spool, report(context, spool, meta))


# Look-ahead: the open-to-open label needs h + 1 sessions after its date; 3 weekdays spare for holidays.
LOOKAHEAD = max(SETTINGS.horizons) + 1 + 3

# Labels fill in as their bars land: an existing forward_returns partition of the last three weeks is
# recomputed (by the automation sensor of `dagster dev`) when a raw_prices partition in its window is
# updated, unless it was itself updated in the same run. Over a historical range, the main job includes
# the look-ahead partitions instead.
LABELS_FILL_IN = (
    dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=21))
    & dg.AutomationCondition.any_deps_updated()
    & ~dg.AutomationCondition.newly_updated()
    & ~dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("labels fill in as their bars land")


@dg.asset(ins={"raw_prices": _prices_window(-SETTINGS.universe_lookback, LOOKAHEAD)},
          automation_condition=LABELS_FILL_IN, **FEATURE_ASSET)
def forward_returns(context: dg.AssetExecutionContext, raw_prices: pd.DataFrame):
    """Open-to-open (tradable) and close-to-close forward returns of universe members over 1 and 5 sessions
    (NaN until both ends are real bars), a training data-error flag and deciles."""
    start, end, _ = partition_dates(context)
    table = forward_returns_table(raw_prices, SETTINGS, start, end)
    meta = {"calendar": SETTINGS.calendar}
    if len(raw_prices):
        meta["prices_through"] = str(max(raw_prices["date"]))
    pending = {}
    for col in target_columns(SETTINGS):
        realized = table[col].notna()
        excluded = int((realized & ~table[f"{col}_ok"]).sum())
        meta[f"{col}_realized"] = int(realized.sum())
        pending[col] = len(table) - meta[f"{col}_realized"]
        meta[f"{col}_untrainable_jumps"] = excluded
        if excluded:
            context.log.warning(f"{excluded} {col} labels not trained on: a one-day move beyond "
                                f"{SETTINGS.max_abs_daily_return:.0%} inside the horizon (they are still evaluated)")
    meta["labels_pending"] = (
        f"{', '.join(f'{c} {n}' for c, n in pending.items() if n)} rows: a label is realized once the bars at the "
        f"end of its horizon are in the lake (prices through {meta.get('prices_through', 'n/a')}), so the newest "
        "days wait; they fill in as those bars land (labels_fill_in_sensor)"
        if any(pending.values()) else "none: every label of this run is realized")
    return asset_output(context, table, report(context, table, meta))


labels_fill_in_sensor = dg.AutomationConditionSensorDefinition(
    "labels_fill_in_sensor",
    target=dg.AssetSelection.assets(forward_returns),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Recomputes recent forward_returns partitions when the raw_prices bars their labels need land.",
)
