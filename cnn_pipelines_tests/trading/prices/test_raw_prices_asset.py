"""raw_prices as a Dagster asset: range runs, validation before write, checks, lookback loads downstream."""


import dagster as dg
import pandas as pd
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines.trading.prices.assets import raw_prices
from cnn_pipelines.trading.partitions import weekday_partitions
from cnn_pipelines.trading.prices.resources import FilePriceSource
from cnn_pipelines.trading.prices.validation import PriceValidationError

from cnn_pipelines_tests.conftest import lake_resources, run_range


def test_range_run_writes_every_partition_and_reports(lake_root, tiny_source):
    instance = dg.DagsterInstance.ephemeral()
    result = run_range([raw_prices], "2019-12-23", "2020-01-10", lake_resources(lake_root, tiny_source), instance)
    assert result.success
    keys = weekday_partitions.get_partition_keys_in_range(dg.PartitionKeyRange("2019-12-23", "2020-01-10"))
    assert lake.materialized_keys(lake_root, "raw_prices") == keys
    mats = result.get_asset_materialization_events()
    assert len(mats) == len(keys)  # one materialization per partition, in one run
    # Each partition reports its own rows and date; the run's totals and preview sit on the newest one only.
    by_key = {m.materialization.partition: m.materialization.metadata for m in mats}
    for k in keys:
        assert by_key[k]["rows"].value == len(lake.read_partitions(lake_root, "raw_prices", [k]))
    assert by_key["2019-12-25"]["rows"].value == 0 and by_key["2019-12-23"]["tickers"].value == 8
    last = by_key[keys[-1]]
    assert last["run_rows"].value == sum(by_key[k]["rows"].value for k in keys)
    assert last["run_first_date"].value == "2019-12-23" and last["run_last_date"].value == "2020-01-10"
    # issue 31: the preview on partition 2020-01-10 shows rows of 2020-01-10 (a range run's first rows were another
    # day's), as a table shown inline
    preview = last["preview"].value.records
    day = lake.read_partitions(lake_root, "raw_prices", ["2020-01-10"]).set_index("ticker")
    assert last["preview_day"].value == "2020-01-10" and "date" not in preview[0].data  # no date column to wrap
    assert preview and all(r.data["close"] == pytest.approx(day.loc[r.data["ticker"], "close"], abs=0.005)
                           and r.data["close"] == round(r.data["close"], 2) for r in preview)  # to the cent
    assert all("preview" not in by_key[k] and "run_rows" not in by_key[k] for k in keys[:-1])
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"schema", "unique_date_ticker", "price_sanity", "no_quarantined_tickers",
                                              "plausible_moves", "no_open_rejections"}
    assert all(c.passed for c in checks)
    assert len(instance.get_runs()) == 1


def test_holiday_partition_is_empty_not_a_failure(lake_root, tiny_source):
    result = run_range([raw_prices], "2020-12-25", "2020-12-25", lake_resources(lake_root, tiny_source))
    assert result.success
    assert len(lake.read_partitions(lake_root, "raw_prices", ["2020-12-25"])) == 0


KEYS = ["2021-03-01", "2021-03-02", "2021-03-03", "2021-03-04", "2021-03-05"]


def _two_ticker_files(files) -> pd.DataFrame:
    files.mkdir()
    good = pd.DataFrame({"date": pd.bdate_range("2021-03-01", periods=5), "open": 10.0,
                         "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0})
    good.to_csv(files / "aaa.csv", index=False)
    good.to_csv(files / "bbb.csv", index=False)
    return good


def strict_run(root, files, strict: bool):
    return run_range([raw_prices], KEYS[0], KEYS[-1], lake_resources(root, FilePriceSource(path=str(files))),
                     run_config={"ops": {"raw_prices": {"config": {"strict": strict}}}})


def test_strict_mode_fails_the_run_and_keeps_stored_partitions(lake_root, tmp_path):
    good = _two_ticker_files(tmp_path / "files")
    assert strict_run(lake_root, tmp_path / "files", strict=True).success
    before = lake.read_partitions(lake_root, "raw_prices", KEYS)

    good.assign(close=[10.5, 10.6, -3.0, 10.4, 10.5]).to_csv(tmp_path / "files" / "aaa.csv", index=False)
    with pytest.raises(PriceValidationError, match="non-positive price") as info:
        strict_run(lake_root, tmp_path / "files", strict=True)
    assert "2021-03-03" in str(info.value) and "AAA" in str(info.value)
    pd.testing.assert_frame_equal(before, lake.read_partitions(lake_root, "raw_prices", KEYS))


def test_a_bad_ticker_is_quarantined_the_others_land_and_its_stored_rows_stay(lake_root, tmp_path):
    good = _two_ticker_files(tmp_path / "files")
    assert strict_run(lake_root, tmp_path / "files", strict=False).success
    before = lake.read_partitions(lake_root, "raw_prices", KEYS)

    good.assign(close=[10.5, 10.6, -3.0, 10.4, 10.5]).to_csv(tmp_path / "files" / "aaa.csv", index=False)
    good.assign(close=[10.1, 10.2, 10.3, 10.4, 10.5]).to_csv(tmp_path / "files" / "bbb.csv", index=False)
    (tmp_path / "files" / "ccc.csv").write_text("Date,Price\n2021-03-01,3\n")  # unreadable: no OHLCV columns
    result = strict_run(lake_root, tmp_path / "files", strict=False)
    assert result.success
    after = lake.read_partitions(lake_root, "raw_prices", KEYS)
    # AAA's rejected day keeps its stored row, its other days and BBB's new closes landed, CCC never appears
    aaa = after[after["ticker"] == "AAA"].set_index("date")["close"]
    assert aaa.tolist() == [10.5, 10.6, 10.5, 10.4, 10.5]
    stored = before[(before["ticker"] == "AAA") & (before["date"].astype(str) == "2021-03-03")].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, after[(after["ticker"] == "AAA") & (after["date"].astype(str) == "2021-03-03")]
                                  .reset_index(drop=True))
    assert after.loc[after["ticker"] == "BBB", "close"].tolist() == [10.1, 10.2, 10.3, 10.4, 10.5]
    assert set(after["ticker"]) == {"AAA", "BBB"}
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_quarantined_tickers")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["quarantined"].value == "AAA, CCC"
    rows = [r.data for r in check.metadata["rejected_rows"].records]  # a table shown inline, not markdown
    aaa_row = next(r for r in rows if r["ticker"] == "AAA")
    assert aaa_row["date"] == "2021-03-03" and "non-positive price" in aaa_row["rule"] and "c -3" in aaa_row["bar"]
    ccc_row = next(r for r in rows if r["ticker"] == "CCC")
    assert "ccc.csv" in ccc_row["rule"] and ccc_row["date"] == "n/a"
    assert check.metadata["rejected_rows_total"].value == len(rows) == 2
    by_ticker = {r.data["ticker"]: r.data for r in check.metadata["by_ticker"].records}
    assert by_ticker["AAA"]["rows"] == 1 and "non-positive price" in by_ticker["AAA"]["rules"]
    # run-level numbers are reported once, on the run's newest partition
    meta = result.get_asset_materialization_events()[-1].materialization.metadata
    assert meta["stored_rows_kept"].value == 1  # AAA's rejected day only; its other days landed


@pytest.mark.parametrize("problem", ["unreadable_file", "empty_file", "file_gone"])
def test_a_day_whose_only_problem_is_a_file_stores_the_others_and_names_it(lake_root, tmp_path, problem):
    """A nightly run on a clean day beside an empty file (Kaggle's US stocks folder holds some) crashed with
    "KeyError: 'date'" after writing the bars: the ledger of held-back days expected a dated row, and an
    unreadable file (or a stored ticker whose file is gone) has none. The day lands, and the check names it."""
    _two_ticker_files(tmp_path / "files")
    assert strict_run(lake_root, tmp_path / "files", strict=False).success
    if problem == "unreadable_file":
        (tmp_path / "files" / "ccc.csv").write_text("Date,Price\n2021-03-01,3\n")
    elif problem == "empty_file":
        (tmp_path / "files" / "ccc.csv").write_text("")
    else:
        (tmp_path / "files" / "bbb.csv").unlink()
    result = run_range([raw_prices], KEYS[-1], KEYS[-1], lake_resources(lake_root, FilePriceSource(
        path=str(tmp_path / "files"))))
    assert result.success
    held = "BBB" if problem == "file_gone" else "CCC"
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_quarantined_tickers")
    assert not check.passed and check.metadata["quarantined"].value == held
    assert [r.data["date"] for r in check.metadata["rejected_rows"].records] == ["n/a"]
    ledger = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_open_rejections")
    assert ledger.passed  # nothing dated is held back
    after = lake.read_partitions(lake_root, "raw_prices", KEYS)
    assert set(after["ticker"]) == {"AAA", "BBB"} and len(after) == 10  # BBB's stored rows stay when its file goes


def test_text_for_a_number_holds_back_its_day_and_the_run_names_file_day_and_text(lake_root, tmp_path):
    """A '-' in bbb.csv's close once failed the run for every ticker ("column 'close' has non-numeric values")."""
    good = _two_ticker_files(tmp_path / "files")
    good.assign(close=["10.5", "10.6", "-", "10.4", "10.5"]).to_csv(tmp_path / "files" / "bbb.csv", index=False)
    result = strict_run(lake_root, tmp_path / "files", strict=False)
    assert result.success
    after = lake.read_partitions(lake_root, "raw_prices", KEYS)
    assert len(after[after["ticker"] == "AAA"]) == 5 and len(after[after["ticker"] == "BBB"]) == 4
    meta = result.get_asset_materialization_events()[-1].materialization.metadata
    assert meta["text_for_numbers"].value == "bbb.csv: 1 bar(s) with text for a number, read as missing: 2021-03-03 close '-'"
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_quarantined_tickers")
    assert check.metadata["quarantined"].value == "BBB"
    with pytest.raises(PriceValidationError, match="NaN price or volume"):  # strict: any bad row fails the run
        strict_run(lake_root, tmp_path / "files", strict=True)


def test_a_held_back_bar_stays_flagged_after_the_nightly_run_until_a_corrected_file_is_re_ingested(lake_root,
                                                                                                   tmp_path):
    """After make run on a messy folder the Checks tab showed no_quarantined_tickers green: it reported the
    nightly run's one day, and the bars the backfill held back were visible nowhere. no_open_rejections reads
    the lake's record of held-back bars, so it stays failed until the days are re-ingested from a fixed file."""
    good = _two_ticker_files(tmp_path / "files")
    good.assign(close=[10.5, 10.6, -3.0, 10.4, 10.5]).to_csv(tmp_path / "files" / "aaa.csv", index=False)
    source = lake_resources(lake_root, FilePriceSource(path=str(tmp_path / "files")))

    def open_rejections(result):
        check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_open_rejections")
        rows = [] if check.passed else [(r.data["ticker"], r.data["date"], r.data["rule"]) for r in
                                        check.metadata["open"].records]
        return check, rows

    check, rows = open_rejections(strict_run(lake_root, tmp_path / "files", strict=False))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert rows == [("AAA", "2021-03-03", "non-positive price")]
    nightly = run_range([raw_prices], "2021-03-05", "2021-03-05", source)
    assert next(c for c in nightly.get_asset_check_evaluations() if c.check_name == "no_quarantined_tickers").passed
    assert open_rejections(nightly)[1] == rows  # the nightly run's own day is clean; the lake's hole is still named
    with lake.connect(lake_root) as con:
        assert con.execute("select ticker, rule from raw_prices_rejections").fetchall() == [("AAA", "non-positive price")]
    good.to_csv(tmp_path / "files" / "aaa.csv", index=False)  # the vendor's corrected file
    check, rows = open_rejections(run_range([raw_prices], "2021-03-03", "2021-03-03", source))
    assert check.passed and check.metadata["open_total"].value == 0
    assert lake.read_partitions(lake_root, "raw_prices", ["2021-03-03"]).set_index("ticker").loc["AAA", "close"] == 10.5


def test_a_bad_tick_warns_in_a_backfill_and_in_the_nightly_run_after_it(lake_root, tmp_path):
    """A 100x close (a London price in pounds among pence, a bad tick) was stored and traded on in silence. The
    plausible_moves check warns, naming the day and the move, over everything the lake holds: the nightly run
    after a backfill does not turn it green; a one-day run judges its day against the stored day before it.
    The bars stay as the vendor sent them."""
    good = _two_ticker_files(tmp_path / "files")
    good.assign(close=[10.5, 10.6, 1060.0, 10.4, 10.5], high=[11, 11, 1061, 11, 11]).to_csv(
        tmp_path / "files" / "aaa.csv", index=False)
    result = strict_run(lake_root, tmp_path / "files", strict=False)
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "plausible_moves")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    rows = [r.data for r in check.metadata["moves"].records]
    assert [(r["ticker"], r["date"]) for r in rows] == [("AAA", "2021-03-04"), ("AAA", "2021-03-03")]  # newest first
    assert rows[1]["move"] == "close 1060, x100" and rows[1]["previous"] == "2021-03-02 close 10.6"
    assert lake.read_partitions(lake_root, "raw_prices", ["2021-03-03"]).set_index("ticker").loc["AAA", "close"] == 1060
    assert check.metadata["moves_in_this_run"].value == 2
    # the nightly run after it neither hides the stored tick nor loses its own move against the stored day before
    nightly = run_range([raw_prices], "2021-03-05", "2021-03-05",
                        lake_resources(lake_root, FilePriceSource(path=str(tmp_path / "files"))))
    check = next(c for c in nightly.get_asset_check_evaluations() if c.check_name == "plausible_moves")
    assert not check.passed and [r.data["date"] for r in check.metadata["moves"].records] == ["2021-03-04", "2021-03-03"]
    assert check.metadata["moves_in_this_run"].value == 0
    again = run_range([raw_prices], "2021-03-04", "2021-03-04",
                      lake_resources(lake_root, FilePriceSource(path=str(tmp_path / "files"))))
    check = next(c for c in again.get_asset_check_evaluations() if c.check_name == "plausible_moves")
    assert check.metadata["moves_in_this_run"].value == 1 and check.metadata["moves_total"].value == 2


@dg.asset(
    partitions_def=weekday_partitions,
    io_manager_key="lake",
    ins={"raw_prices": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-4))},
)
def close_window(context: dg.AssetExecutionContext, raw_prices: pd.DataFrame) -> pd.DataFrame:
    """Test-only downstream asset: records which dates its 5-partition lookback window delivered."""
    day = pd.Timestamp(context.partition_key)
    dates = sorted(pd.to_datetime(raw_prices["date"]).unique())
    return pd.DataFrame({"date": [day.date()], "n_dates": [len(dates)], "first": [dates[0].date()]})


def test_downstream_lookback_loads_window_and_names_missing_upstream(lake_root, tiny_source):
    res = lake_resources(lake_root, tiny_source)
    assert run_range([raw_prices], "2021-03-01", "2021-03-12", res, selection="raw_prices").success
    result = dg.materialize([raw_prices.to_source_asset(), close_window], partition_key="2021-03-12", resources=res)
    out = result.output_for_node("close_window")
    assert out["n_dates"].item() == 5 and str(out["first"].item()) == "2021-03-08"

    with pytest.raises(lake.MissingPartitionsError) as info:
        dg.materialize([raw_prices.to_source_asset(), close_window], partition_key="2021-03-02", resources=res)
    assert info.value.missing == ["2021-02-24", "2021-02-25", "2021-02-26"]


def test_freshness_is_judged_against_the_last_day_the_files_hold(lake_root, tmp_path):
    """A study on historical files showed raw_prices_freshness failed forever: the lake was "behind" today's
    partition by years, though it held the files' last day. Freshness is now measured to the newest day there is
    to ingest: the newest partition, or the source's last day where that is earlier."""
    from cnn_pipelines.trading.prices.checks import freshness, make_freshness_check

    _two_ticker_files(tmp_path / "files")  # bars 2021-03-01 .. 2021-03-05
    assert strict_run(lake_root, tmp_path / "files", strict=False).success
    last = weekday_partitions.get_last_partition_key()
    passed, meta = freshness(lake_root, "raw_prices", last, source_end="2021-03-05")
    assert passed and meta["lag_weekdays"] == 0 and meta["due"] == "2021-03-05"
    assert not freshness(lake_root, "raw_prices", last)[0]  # a source that does not say where it ends: today's
    passed, meta = freshness(lake_root, "raw_prices", last, source_end="2021-03-10")  # 3 weekdays not ingested
    assert not passed and meta["lag_weekdays"] == 3
    check = make_freshness_check(str(lake_root), weekday_partitions)  # as definitions.py builds it, on this lake
    evaluation = check(dg.build_asset_check_context(), prices=FilePriceSource(path=str(tmp_path / "files")))
    assert evaluation.passed and evaluation.metadata["source_ends"].value == "2021-03-05"
