"""A user's own folder of messy vendor files, in four layouts, runs through the main job with a historical --end,
end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.research.selection import rank_families

from cnn_pipelines_tests.conftest import REPO_ROOT, metadata_offenders
from cnn_pipelines_tests.trading.prices.vendor_files import vendor_folder


@pytest.mark.timeout(1500)
def test_vendor_folder_in_four_layouts_runs_the_main_job_end_to_end(tmp_path: Path):
    """Per-ticker Yahoo CSVs, a long CSV with Symbol and DST-changing offsets (and the index ^GSPC), a long
    lowercase Parquet file, and the two-level CSV yfinance's download writes (V1). Before issue 27 the offsets crashed planning (AttributeError on .dt), ^GSPC was
    traded, its bar on 2018-12-05 quarantined its history, and --days 300 failed in feature_selection."""
    files = tmp_path / "vendor"
    clean = vendor_folder(files, "2017-01-03", "2020-09-30", n_tickers=5, broken="BRK", layouts=True)
    brk_days = clean["BRK"]["Date"]
    before_bad, bad_day, after_bad = brk_days.iloc[len(brk_days) // 2 - 1: len(brk_days) // 2 + 2]
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    root = tmp_path / "lake"
    env = dict(os.environ, DAGSTER_HOME=str(home), CNN_LAKE_ROOT=str(root), CNN_PRICE_SOURCE="files",
               CNN_PRICE_FILES=str(files), CNN_EPOCHS="3")  # ingestion and planning are tested, not learning
    env.pop("CNN_EXCHANGE", None)
    proc = subprocess.run([sys.executable, "-m", "cnn_pipelines.main", "--end", "2020-07-31", "--days", "300", "--periods", "2",
                           "--no-vision"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    # issue 31: the terminal shows the plan, one line per run and the summary; Dagster's events stay in the runs'
    # logs (--verbose prints them)
    assert " - DEBUG - " not in proc.stdout + proc.stderr and len(proc.stdout.splitlines()) < 80, proc.stdout[-3000:]

    # the broken file's bad day is quarantined (named with its rule), its other days and the five good tickers
    # land; the weekend and Thanksgiving rows that repeat the previous bar are dropped
    prices = lake.read_partitions(root, "raw_prices", lake.materialized_keys(root, "raw_prices"))
    days = pd.to_datetime(prices["date"])
    brk = set(days[prices["ticker"] == "BRK"])
    assert bad_day not in brk and before_bad in brk and after_bad in brk
    assert sorted(prices["ticker"].unique()) == ["BRK", *[f"V{i}" for i in range(5)], "^GSPC"]
    v1 = prices.loc[prices["ticker"] == "V1"].set_index(days[prices["ticker"] == "V1"])["close"].sort_index()
    assert len(v1) > 300 and np.allclose(v1, clean["V1"].set_index("Date")["Close"].reindex(v1.index))  # yfinance's layout
    assert pd.Timestamp("2018-12-05") not in set(days)  # the index's flat bar on the closure: repaired
    gspc = set(days[prices["ticker"] == "^GSPC"])
    assert {pd.Timestamp("2018-12-04"), pd.Timestamp("2018-12-06")} <= gspc and min(gspc) == days.min()  # all kept
    assert (days.dt.dayofweek < 5).all() and pd.Timestamp("2019-11-28") not in set(days)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        checks = [e for e in instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=10_000)]
        quarantine = [e.event_log_entry.dagster_event.event_specific_data for e in checks
                      if e.event_log_entry.dagster_event.event_specific_data.check_name == "no_quarantined_tickers"]
        failed = [c for c in quarantine if not c.passed]
        assert failed and all(c.severity == dg.AssetCheckSeverity.ERROR for c in failed)
        assert "BRK" in str(failed[0].metadata["quarantined"].value)
        by_ticker = {r.data["ticker"]: r.data["rules"] for r in failed[0].metadata["by_ticker"].records}
        assert "non-positive price" in by_ticker["BRK"]
        # issue 31: the study at a glance, refreshed by the evaluation and the nightly runs
        reports = instance.fetch_materializations(dg.AssetKey("study_report"), limit=10).records
        assert len(reports) == 2  # evaluation_job, then nightly_job
        study = reports[0].asset_materialization.metadata
        # issue 31: every asset's metadata follows the formatting rules
        latest = {}
        for key in instance.get_asset_keys():
            event = instance.get_latest_materialization_event(key)
            if event is not None:
                latest[key.to_user_string()] = event.asset_materialization.metadata
        assert len(latest) > 10 and not metadata_offenders(latest), metadata_offenders(latest)
        backtest = latest["backtest"]  # its headline in %, the same figure as its statistics table's
        stats = {r.data["statistic"]: r.data for r in backtest["stats"].value.records}
        assert stats["annual return %"]["long_short"] == backtest["annual_return_pct"].value
        assert stats["max drawdown %"]["long_short"] == backtest["max_drawdown_pct"].value <= 0
        # a partitioned asset's page names the range the lake holds, whichever run wrote its latest event
        assert latest["cnn_model"]["lake_covers"].value == "2020-06 .. 2020-07 (2 monthly partitions)"
        assert latest["daily_signals"]["lake_covers"].value.endswith("weekday partition)")  # the nightly day
        assert all("lake_covers" in latest[a] for a in ("raw_prices", "universe", "feature_selection",
                                                          "oos_predictions", "production_model"))
    preds = lake.read_partitions(root, "oos_predictions", ["2020-06-01", "2020-07-01"], "period")
    ic, _, days = oos_ic(preds, "fwd_open_1d")
    assert study["oos_ic"].value == round(ic, 4) and study["oos_days"].value == days and study["periods"].value == 2
    assert "oracle_ic" not in study  # only a synthetic market knows its expected returns
    assert "lake_covers" not in study  # not partitioned, though the nightly run that refreshed it is
    board = study["leaderboard"].value
    assert [r.data["model"] for r in board.records][0] in {"cnn_ta", "ridge", "hgb", "ar_cnn"} and len(board.records) == 4
    assert {"IC", "s.e.", "net Sharpe", "bps/day"} <= {c.name for c in board.schema.columns}
    assert study["signals_for"].value > "2020-07-30" and len(study["signals"].value.records) > 0
    # the model's output is a cross-sectional z-score, and the column says so (not a bare "prediction")
    assert [c.name for c in study["signals"].value.schema.columns] == ["ticker", "side", "rank", "predicted z"]
    assert "too short to judge" in study["verdict"].value and "not_built_yet" not in study
    # the data's health over the whole lake: BRK's bad bar is still held back after the nightly run
    assert study["held_back_bars"].value == 1 and study["implausible_moves"].value == 0

    # labels after the historical end are realized (the look-ahead partitions were materialized)
    with duckdb.connect(str(root / "lake.duckdb"), read_only=True) as con:
        last = con.execute("select count(fwd_open_1d), count(*) from forward_returns "
                           "where date = date '2020-07-30'").fetchone()
        assert last[0] == last[1] == 6  # BRK lost one bad day, not its history
        for table in ("universe", "indicator_panel", "oos_predictions", "model_predictions", "daily_signals"):
            assert con.execute(f"select count(*) from {table} where ticker = '^GSPC'").fetchone()[0] == 0, table
        periods = con.execute("select count(distinct period), count(*) from oos_predictions").fetchone()
        assert periods[0] == 2 and periods[1] > 100
        assert con.execute("select count(*) from backtest").fetchone()[0] > 30
    assert (root / "reports" / "factor_tearsheet" / "tearsheet.html").exists()
    ranking = lake.read_partitions(root, "feature_selection", ["2020-07-01"], "period")
    assert ranking["selected"].sum() == 15
    assert "days with a realized fwd_open_1d, mean daily rank IC" in proc.stdout  # each IC says its sample
    assert "tearsheet (alphalens, " in proc.stdout and "is realized, label fwd_open_1d): 1D IC" in proc.stdout


def test_a_family_this_universe_cannot_compute_is_left_out_not_a_crash():
    rng = np.random.default_rng(0)
    n = 600
    cols = [f"{t:02d}_{fam}" for fam in ("RSI", "MACD", "BETA_MKT") for t in (6, 7, 8)]
    x = pd.DataFrame(rng.normal(size=(n, len(cols))), columns=cols)
    x[[c for c in cols if c.endswith("BETA_MKT")]] = np.nan       # 4 names: no factor portfolios
    x.loc[: n // 4, "06_MACD"] = np.nan                           # a warm-up gap: still covered
    y = x["07_RSI"].to_numpy() + rng.normal(size=n)
    ranking = rank_families(x, y, bins=8)
    assert ranking["family"].tolist() == ["RSI", "MACD", "BETA_MKT"]
    assert ranking["available"].tolist() == [True, True, False] and np.isnan(ranking["mutual_information"].iloc[2])
    with pytest.raises(ValueError, match="computable feature families"):
        rank_families(x[[c for c in cols if c.endswith("BETA_MKT")]], y, bins=8)
