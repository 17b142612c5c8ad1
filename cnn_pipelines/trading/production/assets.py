"""Nightly production assets (weekday partitions): production_model trained on the trailing window ending
at the partition date, and daily_signals for the next trading day; plus the nightly schedule."""

import dataclasses
import datetime as dt
from collections.abc import Iterator

import dagster as dg

from cnn_pipelines.cluster import TRAINS
import pandas as pd

from cnn_pipelines.metadata import asset_output, inline, short_list, table_value
from cnn_pipelines.plots import rounded
from cnn_pipelines.storage import lake
from cnn_pipelines.trading.features.assets import SETTINGS
from cnn_pipelines.trading.research.assets import CALENDAR, RS, epochs_shown, period_seed
from cnn_pipelines.trading.research.layout import ImageLayout, to_images
from cnn_pipelines.trading.features.panel import forward_returns_table
from cnn_pipelines.trading.partitions import weekday_partitions
from cnn_pipelines.trading.production.training import SCORE_COLUMN, SIGNAL_CHECKS, production_fold, rank_signals, signal_problems
from cnn_pipelines.trading.research.periods import fit_fold
from cnn_pipelines.trading.settings import current_evaluation_settings

ES = current_evaluation_settings()
TRAIN_WEEKDAYS = RS.train_months * 23 + 5


def _window(asset: str, extra: int = 0) -> dg.AssetIn:
    return dg.AssetIn(asset, partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-(TRAIN_WEEKDAYS + extra), end_offset=0, allow_nonexistent_upstream_partitions=True))


@dg.asset(partitions_def=weekday_partitions, io_manager_key="lake", group_name="production", kinds={"keras"},
          ins={"indicator_panel": _window("indicator_panel"),
               "raw_prices": _window("raw_prices", SETTINGS.universe_window + 10)})
def production_model(context: dg.AssetExecutionContext, indicator_panel: pd.DataFrame,
                     raw_prices: pd.DataFrame) -> dg.Output[dict]:
    """CNN trained on the trailing window ending at the partition date. Labels are recomputed from prices
    up to that date, so only returns already realized are used. Selection, layout and the epoch ensemble are
    fitted the way research fits them, on this window (so its families and epochs are its own)."""
    from cnn_pipelines.trading.research.cnn import fingerprint, train_period

    day = context.partition_key
    fold = production_fold(day, RS.train_months, RS.val_months, CALENDAR)
    targets = forward_returns_table(raw_prices, SETTINGS, fold.train_start, day)
    seed = period_seed(day)
    fitted = fit_fold(indicator_panel, targets, fold, SETTINGS, RS, seed, label=day)
    data, ranking, layout = fitted.data, fitted.ranking, fitted.layout
    x_tr, y_tr, x_va, y_va, d_va = fitted.arrays
    config = RS.__dict__ | {"production_day": day, "seed": seed}
    ckpt = lake.artifact_dir(lake.default_root(), "models", "production", day)
    rs = dataclasses.replace(RS, seed=seed)
    result = train_period(x_tr, y_tr, x_va, y_va, d_va, rs, ckpt, fingerprint(x_tr, y_tr, x_va, y_va, config=config),
                          log=context.log.info)
    out = layout.to_json() | {"day": day, "checkpoints": str(ckpt.resolve()), "ensemble": result.ensemble,
                              "families_ranked": ranking["family"].tolist(), "train_rows": int(len(x_tr)),
                              "last_label_date": str(max(data.frame.loc[data.train | data.val, "date"]))}
    return asset_output(context, out, {
        "day": day, "train_rows": len(x_tr), "val_rows": len(x_va), "ensemble_epochs": inline(result.ensemble),
        "best_val_ic": rounded(float(result.epochs["val_ic"].max()), 4, "n/a (no validation IC)"),
        "last_label_date": out["last_label_date"],
        "epochs": table_value(epochs_shown(result.epochs)),
    })


@dg.asset(partitions_def=weekday_partitions, io_manager_key="lake", group_name="production", kinds={"pandas"},
          check_specs=[dg.AssetCheckSpec(name, asset="daily_signals", description=text)
                       for name, text in SIGNAL_CHECKS.items()])
def daily_signals(context: dg.AssetExecutionContext, production_model: dict, indicator_panel: pd.DataFrame):
    """Ranked predictions for the next trading day, with long/short flags (top/bottom K), from features known
    at the partition date's close."""
    from cnn_pipelines.trading.research.cnn import predict_ensemble

    day = context.partition_key
    rows = indicator_panel.reset_index(drop=True)
    next_day = CALENDAR.next_session(day)  # the exchange's next session: never a holiday
    if rows.empty:
        context.log.warning(f"{day}: no features (holiday?); no signals")
        empty = rank_signals(rows, pd.Series([], dtype=float).to_numpy(), ES.top_k, next_day)
        yield asset_output(context, empty, {"names": 0})
        yield from signal_check_results(empty, rows, day)
        return
    # trained on another machine of a cluster: its place in this machine's mirror of the lake
    pred = predict_ensemble(lake.stored_artifact(lake.default_root(), production_model["checkpoints"]),
                            production_model["ensemble"],
                            to_images(rows, ImageLayout.from_json(production_model)))
    signals = rank_signals(rows, pred, ES.top_k, next_day)
    yield asset_output(context, signals, {
        "names": len(signals), "trade_date": str(next_day),
        "long": short_list(signals.loc[signals["side"] == "long", "ticker"].tolist()),
        "short": short_list(signals.loc[signals["side"] == "short", "ticker"].tolist()),
        "signal_day": day,  # the days are keys, not columns repeating one date on every row (they wrapped)
        "preview": table_value(signals.head(10).assign(**{SCORE_COLUMN: signals["prediction"].head(10).astype(float)
                                                          .round(3)})
                               .drop(columns=["date", "trade_date", "prediction"], errors="ignore")),
    })
    yield from signal_check_results(signals, rows, day)


def signal_check_results(signals: pd.DataFrame, rows: pd.DataFrame, day: str) -> Iterator[dg.AssetCheckResult]:
    """daily_signals' checks (``SIGNAL_CHECKS``), each naming what it found; a failure is an error: these
    signals would trade."""
    for name, problems in signal_problems(signals, rows, ES.top_k, day, CALENDAR).items():
        yield dg.AssetCheckResult(check_name=name, passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
                                  metadata={"names": len(signals),
                                            "found": "; ".join(problems) if problems else "nothing wrong"})


nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=dg.AssetSelection.assets("raw_prices", "price_adjustments", "universe", "indicator_panel", "forward_returns",
                                       production_model, daily_signals, "study_report"),
    partitions_def=weekday_partitions,
    tags=TRAINS,
    description="The newest weekday partition: prices, features, production model, next-day signals; then the "
                "study report (unpartitioned) shows the new signals beside the study.",
)

# 02:00 UTC Monday-Friday: the previous weekday's partition is complete (a weekday partition's window ends
# at midnight of the next weekday, so Friday's is processed early Monday, before the next open).
NIGHTLY_CRON = "0 2 * * 1-5"


def nightly_partition(evaluation_time: dt.datetime) -> str:
    """The newest weekday strictly before the evaluation date (Monday 02:00 -> Friday)."""
    day = pd.Timestamp(evaluation_time.date()) - pd.offsets.BDay(1)
    return day.strftime("%Y-%m-%d")


@dg.schedule(cron_schedule=NIGHTLY_CRON, job=nightly_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    """Each weekday night, materialize the newest complete weekday partition through to daily_signals."""
    key = nightly_partition(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"nightly-{key}", partition_key=key)
