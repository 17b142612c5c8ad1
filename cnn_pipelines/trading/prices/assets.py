"""raw_prices: validated daily bars per weekday partition, from the configured price source.

Ingestion degrades per (ticker, day): a rejected bar holds back that ticker's day, an unreadable file its
ticker, and everything else lands. Nothing stored is ever lost: a stored row the source no longer delivers
(a file now empty, header-only, truncated or gone, a quarantined day) stays exactly as it was, and the
``no_quarantined_tickers`` check fails with ERROR severity naming the ticker and what its source covers.
A real delisting (the source's history ends and the lake never held later rows) changes nothing. Strict
mode (run config ``strict: true`` or $CNN_STRICT_INGESTION=1) rejects the whole batch instead.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cnn_pipelines.metadata import asset_output, asset_result, inline, listed, short_list, table_value
from cnn_pipelines.settings_file import project_env
from cnn_pipelines.storage import lake
from cnn_pipelines.trading.prices.calendar import to_date, trading_calendar
from cnn_pipelines.trading.prices.checks import (MOVE_LIMIT, MOVE_LOOKBACK_DAYS, REJECTIONS, bars_frame,
                                                 implausible_moves, price_check_results)
from cnn_pipelines.trading.partition_metadata import report as partition_report
from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
from cnn_pipelines.trading.partitions import weekday_partitions
from cnn_pipelines.trading.prices.resources import PriceSource
from cnn_pipelines.trading.settings import current_settings
from cnn_pipelines.trading.prices.ingest import context_start, ingest
from cnn_pipelines.trading.prices.validation import CANONICAL_COLUMNS, PriceSchemaError

CALENDAR_NAME = current_settings().calendar

RAW_PRICES_CHECKS = [
    dg.AssetCheckSpec("schema", asset="raw_prices", description="Canonical columns and dtypes"),
    dg.AssetCheckSpec("unique_date_ticker", asset="raw_prices", description="No duplicate (date, ticker) rows"),
    dg.AssetCheckSpec("price_sanity", asset="raw_prices", description="Positive prices, low <= open/close <= high, volume >= 0"),
    dg.AssetCheckSpec("no_quarantined_tickers", asset="raw_prices",
                      description="No bar rejected, no file unreadable and no stored row missing from the source "
                                  "in this run (what was held back and what was kept is named)"),
    dg.AssetCheckSpec("no_open_rejections", asset="raw_prices",
                      description="Every bar a run held back has been stored since (a corrected file re-ingested for "
                                  "its days); over the whole lake, so a nightly run does not hide what a backfill "
                                  "held back"),
    dg.AssetCheckSpec("plausible_moves", asset="raw_prices",
                      description=f"No close more than {MOVE_LIMIT:g}x, or under 1/{MOVE_LIMIT:g} of, the ticker's "
                                  f"previous bar after its split/dividend adjustment (a bad tick, a unit change, an "
                                  f"unreported split); a warning: the bars are stored as the vendor sent them"),
]


class RawPricesConfig(dg.Config):
    """strict: reject the whole batch when any row breaks a rule (default: hold back that ticker's day)."""

    strict: bool = project_env().get("CNN_STRICT_INGESTION", "0").strip().lower() in ("1", "true", "yes")


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date, list[str]]:
    """First and last date covered by the run's partitions, and the keys themselves."""
    keys = list(context.partition_keys)
    return to_date(keys[0]), to_date(keys[-1]), keys


def _preview(df: pd.DataFrame, n: int = 8) -> dict:
    """The first rows of the run's newest day, the partition this metadata sits on (a range run's first rows
    were of another day): prices to the cent (4 decimals below 1), volumes as whole numbers with separators.
    The day is its own key, not a column repeating it on every row (a narrow date column wrapped as "2026-" /
    "12-03")."""
    if not len(df):
        return {"preview": "empty (holiday or no data)"}
    dates = pd.to_datetime(df["date"])
    head = df[dates == dates.max()].head(n).copy()
    for col in ("open", "high", "low", "close"):  # cents, as a quote reads (4 decimals pushed volume off the page)
        if col in head:
            head[col] = [round(v, 2) if abs(v) >= 1 else round(v, 4) for v in head[col].astype(float)]
    if "volume" in head:
        head["volume"] = head["volume"].map(lambda v: f"{v:,.0f}" if v == v else "n/a")
    return {"preview_day": dates.max().strftime("%Y-%m-%d"),
            "preview": table_value(head[[c for c in head.columns if c in ("ticker", "open", "high", "low", "close",
                                                                          "volume")]])}


REJECTED_SHOWN = 20


def rejected_rows_table(quarantine: pd.DataFrame, limit: int = REJECTED_SHOWN) -> dg.TableMetadataValue:
    """The first ``limit`` rejected rows by ticker and date: what was held back, the rule it broke and the bar
    as the source delivered it; the check's ``rejected_rows_total`` says how many there were in all."""
    q = quarantine.copy()
    q["date"] = q["date"].fillna("").astype(str) if "date" in q else ""
    q = q.sort_values(["ticker", "date"], kind="stable").head(limit)
    shown = bars_frame(q.assign(date=q["date"].replace("", "n/a")))
    shown.insert(2, "rule", q["rule"].astype(str).to_numpy())
    return table_value(shown)


def _actions(table: pd.DataFrame, key: str) -> dict[str, dg.MetadataValue | int]:
    """The run's splits and dividends (ex-dates whose adjustment is not 1): the first 10 as a table under
    ``key`` and their number under ``key_total`` (all of them: ``select * from price_adjustments``)."""
    cols = [c for c in ("date", "ticker", "adjustment", "kind") if c in table.columns]
    events = table.loc[table["adjustment"] != 1.0, cols] if len(table) else table
    if not len(events):
        return {key: dg.MetadataValue.text("none in this run"), f"{key}_total": 0}
    shown = events.head(10).rename(columns={"date": "ex_date"}).astype({"ex_date": str})
    return {key: table_value(shown.assign(adjustment=shown["adjustment"].astype(float).round(6))),
            f"{key}_total": len(events)}


ADJUSTMENTS_VIEW_SQL = "SELECT date AS ex_date, ticker, adjustment FROM raw_prices WHERE adjustment <> 1"
IMPLAUSIBLE_FACTOR = 50.0  # an action beyond 50:1 (or 1:50) in one day is far more often a vendor error


def corporate_actions(stored: pd.DataFrame) -> pd.DataFrame:
    """The ex-dates among stored raw_prices rows (adjustment != 1), with the kind each factor implies: below 0.8
    a split (or a special dividend that large), above 1 a reverse split, otherwise a cash dividend."""
    events = stored.loc[stored["adjustment"] != 1.0, ["date", "ticker", "adjustment"]].copy() if len(stored) else \
        pd.DataFrame({"date": [], "ticker": [], "adjustment": []})
    factor = events["adjustment"].astype(float)
    events["kind"] = ["reverse split" if f > 1 else "split" if f < 0.8 else "dividend" for f in factor]
    return events.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)


def define_adjustments_view(root: Path) -> None:
    """The catalog's list of corporate actions, one row per ex-date (the data stays in raw_prices)."""
    lake.define_view(root, "price_adjustments", ADJUSTMENTS_VIEW_SQL)


def stored_rows(root, keys: list[str]) -> pd.DataFrame:
    """Rows already in the lake in the partitions being rewritten."""
    present = lake.held_keys(root, "raw_prices", keys)
    if not present:
        return pd.DataFrame(columns=CANONICAL_COLUMNS)
    return lake.read_partitions(root, "raw_prices", present)  # as stored: unadjusted, with their adjustments


@dg.asset(
    partitions_def=weekday_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="lake",
    check_specs=RAW_PRICES_CHECKS,
    group_name="trading",
    kinds={"parquet", "pandas"},
)
def raw_prices(context: dg.AssetExecutionContext, config: RawPricesConfig, prices: PriceSource,
               lake: dg.ResourceParam[ParquetLakeIOManager]):
    """Daily OHLCV bars as the vendor reported them, with each bar's split/dividend adjustment (readers adjust
    as of their own last day); validated before anything is written (a bad bar holds back its ticker's day),
    and no stored row is ever deleted by an ingestion."""
    start, end, keys = partition_dates(context)
    fetched = prices.fetch(context_start(start), end)  # the days before: context for holiday repeats only
    missing = list(fetched.attrs.get("missing_tickers", []))
    file_errors = dict(fetched.attrs.get("file_errors", {}))
    ignored = list(fetched.attrs.get("ignored_files", []))
    not_numbers = [f"{name}: {what}" for name, what in sorted(fetched.attrs.get("not_numbers", {}).items())]
    if not_numbers:
        context.log.warning(f"text where a number belongs, read as missing (validation holds back those days): "
                            f"{listed(not_numbers)}")
    if missing:
        context.log.warning(f"{len(missing)} tickers returned no data: {listed(missing)}")
    if ignored:
        context.log.warning(f"{len(ignored)} file(s) in the price folder are not CSV/Parquet and were not read: "
                            f"{listed(ignored)}")
    if file_errors and config.strict:
        raise PriceSchemaError("strict ingestion: unreadable price files, nothing was written:\n"
                               + "\n".join(file_errors.values()))
    done = ingest(fetched, stored_rows(lake.root_path, keys), start, end, trading_calendar(CALENDAR_NAME),
                  strict=config.strict, source=prices.description, file_errors=file_errors)
    clean, report, kept, quarantine, held = done.table, done.report, done.kept, done.quarantine, done.held
    if held:
        # one count per kind of rule ("unreadable file: <why>" is one kind, whatever the file's message)
        rules = quarantine.groupby(quarantine["rule"].str.split(":").str[0])["ticker"].nunique()
        rules = [f"{r} ({n} ticker{'s' if n > 1 else ''})" for r, n in rules.sort_values(ascending=False).items()]
        context.log.error(f"{len(held)} ticker(s) quarantined (their stored rows kept, their rejected days not "
                          f"written): {listed(held)}; rules: {listed(rules)}; every rejected row is on the "
                          f"no_quarantined_tickers check")
    repaired = {k: v for k, v in report.repairs.items() if v}
    if repaired:
        context.log.info(f"repairs applied: {repaired}")
    by_ticker = (quarantine.groupby("ticker").agg(rows=("rule", "size"), rules=("rule", lambda r: "; ".join(sorted(set(r)))))
                 .reset_index() if len(quarantine) else pd.DataFrame())
    yield asset_output(
        context, clean,
        partition_report(context, clean, {
            "source": prices.description,
            "calendar": CALENDAR_NAME,
            "strict": config.strict,
            "repairs": inline(report.repairs),
            "quarantined_tickers": short_list(held),
            "quarantined_days": report.quarantined_days,
            "stored_rows_kept": len(kept),
            **_actions(corporate_actions(clean), "corporate_actions"),
            "tickers_without_data": short_list(missing),
            "files_not_read": short_list(ignored),
            "text_for_numbers": short_list(not_numbers),
            **_preview(clean),
        }),
    )
    yield from price_check_results(clean)
    yield moves_check(context, lake.root_path, start, end)
    yield open_rejections_check(record_rejections(lake.root_path, quarantine, keys, context.run_id))
    yield dg.AssetCheckResult(
        check_name="no_quarantined_tickers", passed=not held, severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "quarantined": short_list(held),
            "by_ticker": table_value(by_ticker) if len(by_ticker) else "none",
            "rejected_rows": rejected_rows_table(quarantine) if len(quarantine) else "none",
            "rejected_rows_total": len(quarantine),
        },
    )


def moves_check(context: dg.AssetExecutionContext, root: Path, start: dt.date, end: dt.date) -> dg.AssetCheckResult:
    """``plausible_moves`` over everything the lake holds, run after the run's bars are written: a nightly run
    does not hide a bad tick a backfill stored (the bars stay as sent). The run's own moves (dated in its range,
    each against the ticker's previous stored bar) are counted and named in the run's log."""
    keys = lake.materialized_keys(root, "raw_prices")
    whole = implausible_moves(lake.read_partitions(root, "raw_prices", keys) if keys else pd.DataFrame())
    in_run = whole.loc[(whole["date"] >= str(start)) & (whole["date"] <= str(end))]
    if len(in_run):
        named = [f"{t} on {d} ({m})" for t, d, m in in_run[["ticker", "date", "move"]].itertuples(index=False)]
        context.log.warning(f"{len(in_run)} close(s) moved more than {MOVE_LIMIT:g}x from the previous bar (stored "
                            f"as sent; see the plausible_moves check): {listed(named, 5)}")
    whole = whole.sort_values(["date", "ticker"], ascending=[False, True], kind="stable")
    return dg.AssetCheckResult(
        check_name="plausible_moves", passed=not len(whole), severity=dg.AssetCheckSeverity.WARN,
        metadata={"moves": table_value(whole.head(20)) if len(whole) else "none", "moves_total": len(whole),
                  "moves_in_this_run": len(in_run),
                  "scope": f"every stored bar, {keys[0]} .. {keys[-1]}" if keys else "nothing stored yet",
                  "limit": f"x{MOVE_LIMIT:g} or x1/{MOVE_LIMIT:g} from the previous bar within "
                           f"{MOVE_LOOKBACK_DAYS} days, after its adjustment"})


def record_rejections(root: Path, quarantine: pd.DataFrame, keys: list[str], run_id: str) -> pd.DataFrame:
    """Store the run's held-back bars under their days and return every one the lake still records. Each run
    rewrites the days it covers, so re-ingesting a day from a corrected file clears it; a nightly run leaves the
    backfill's days as they were. Rows without a day (an unreadable file) stay the run's own check's."""
    days = pd.to_datetime(quarantine["date"], errors="coerce")
    dated = quarantine.loc[days.notna() & days.dt.strftime("%Y-%m-%d").isin(keys)]
    ledger = pd.DataFrame({"date": days[dated.index].dt.date.to_numpy(), "ticker": dated["ticker"].astype(str).to_numpy(),
                           "rule": dated["rule"].astype(str).to_numpy(), "bar": bars_frame(dated)["bar"].to_numpy(),
                           "run_id": run_id})
    lake.write_partitions(root, REJECTIONS, ledger.astype({"ticker": "string", "rule": "string", "bar": "string",
                                                           "run_id": "string"}), keys)
    lake.ensure_views(root, [REJECTIONS])
    return lake.read_partitions(root, REJECTIONS, lake.materialized_keys(root, REJECTIONS))


def open_rejections_check(ledger: pd.DataFrame) -> dg.AssetCheckResult:
    """``no_open_rejections``: the held-back bars the lake records, newest first (the first 20 shown)."""
    shown = ledger.assign(date=ledger["date"].astype(str)).sort_values(["date", "ticker"], ascending=[False, True])
    return dg.AssetCheckResult(
        check_name="no_open_rejections", passed=not len(ledger), severity=dg.AssetCheckSeverity.WARN,
        metadata={"open": table_value(shown[["ticker", "date", "rule", "bar"]].head(REJECTED_SHOWN)) if len(ledger)
                  else "none",
                  "open_total": len(ledger),
                  "tickers": short_list(sorted(set(ledger["ticker"].astype(str)))),
                  "to_clear": "nothing open" if not len(ledger) else (
                      f"correct the files, then re-run those days (trading_job recomputes what they feed; "
                      f"price_history_job for days before the features): python -m cnn_pipelines.launch "
                      f"trading_job --partition-range {min(shown['date'])}...{max(shown['date'])}"),
                  "query": f"select * from {REJECTIONS} (the lake's DuckDB catalog)"})


def stored_actions(root: Path, keys: list[str]) -> pd.DataFrame:
    """The corporate actions stored in raw_prices for the held partitions among ``keys``."""
    return corporate_actions(stored_rows(root, keys))


def implausible_factors(events: pd.DataFrame) -> pd.DataFrame:
    """Actions whose factor is not positive and finite, or implies more than IMPLAUSIBLE_FACTOR:1 in one day."""
    f = events["adjustment"].astype(float)
    bad = ~np.isfinite(f) | (f <= 0) | (f > IMPLAUSIBLE_FACTOR) | (f < 1 / IMPLAUSIBLE_FACTOR)
    return events.loc[bad]


@dg.asset(
    partitions_def=weekday_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_prices],
    check_specs=[dg.AssetCheckSpec("plausible_factors", asset="price_adjustments",
                                   description=f"Every factor positive, finite and within {IMPLAUSIBLE_FACTOR:g}:1")],
    group_name="trading",
    kinds={"duckdb"},
)
def price_adjustments(context: dg.AssetExecutionContext, lake: dg.ResourceParam[ParquetLakeIOManager]):
    """Splits and dividends per ex-date: the factors stored beside each bar in raw_prices (one atomic write, so a
    bar and its factor never drift apart), served as the DuckDB view ``price_adjustments`` with no second copy.
    Every reader adjusts raw_prices as of its own last day with these factors."""
    root = lake.root_path
    events = stored_actions(root, list(context.partition_keys))
    define_adjustments_view(root)
    yield asset_result(context, partition_report(context, events, {
        "query": dg.MetadataValue.md("`select * from price_adjustments` in the lake's DuckDB catalog"),
        "splits": int((events["kind"] == "split").sum()),
        "reverse_splits": int((events["kind"] == "reverse split").sum()),
        "dividends": int((events["kind"] == "dividend").sum()),
        **_actions(events, "actions"),
    }))
    bad = implausible_factors(events)
    yield dg.AssetCheckResult(
        check_name="plausible_factors", passed=not len(bad), severity=dg.AssetCheckSeverity.WARN,
        metadata={"implausible": table_value(bad.head(20).astype({"date": str}).assign(
                      adjustment=lambda b: b["adjustment"].map(lambda f: f"{float(f):g}"))) if len(bad) else "none",
                  "implausible_total": len(bad)},
    )
