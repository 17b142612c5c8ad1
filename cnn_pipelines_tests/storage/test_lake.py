"""The Parquet lake: atomic writes, range splits, windowed reads, missing partitions, the DuckDB catalog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket

KEYS = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2020-12-21", "2021-01-08")]


def subset(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df[pd.to_datetime(df["date"]).dt.strftime("%Y-%m-%d").isin(keys)]


@pytest.fixture
def prices() -> pd.DataFrame:
    df = SyntheticMarket(MarketConfig(n_tickers=6)).prices(KEYS[0], KEYS[-1])
    return df


def test_range_split_into_one_file_per_month_with_empty_holidays(lake_root, prices):
    counts = lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    assert set(counts) == set(KEYS)
    assert counts["2020-12-25"] == 0 and counts["2021-01-01"] == 0  # holidays: empty, but present
    files = sorted(p.relative_to(lake_root).as_posix() for p in lake_root.rglob("*.parquet"))
    assert files == ["raw_prices/month=2020-12/data.parquet", "raw_prices/month=2021-01/data.parquet"]
    assert lake.materialized_keys(lake_root, "raw_prices") == KEYS
    for key in KEYS:
        assert lake.partition_path(lake_root, "raw_prices", key).exists()
    empty = lake.read_partitions(lake_root, "raw_prices", ["2020-12-25"])
    assert len(empty) == 0 and list(empty.columns) == list(prices.columns)
    month = pq.read_table(lake.partition_path(lake_root, "raw_prices", "2020-12-25"))
    assert month.schema.field("date").type == "date32[day]"
    back = lake.read_partitions(lake_root, "raw_prices", KEYS)
    pd.testing.assert_frame_equal(back, prices.reset_index(drop=True), check_dtype=False)
    assert back["ticker"].map(type).eq(str).all()


def test_rewrite_is_idempotent_and_replaces(lake_root, prices):
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    path = lake.partition_path(lake_root, "raw_prices", KEYS[3])
    before = pq.read_table(path)
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    assert pq.read_table(path).equals(before)
    changed = prices.assign(close=prices["close"] * 2)
    lake.write_partitions(lake_root, "raw_prices", changed, KEYS)
    assert pq.read_table(path).column("close").to_pylist() == [2 * x for x in before.column("close").to_pylist()]
    assert not list(lake_root.rglob(".tmp-*"))


def test_rewriting_one_day_keeps_the_rest_of_its_month(lake_root, prices):
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    day = KEYS[3]
    one = subset(prices, [day]).assign(close=-1.0).iloc[:3]  # the day now has 3 tickers, with new prices
    lake.write_partitions(lake_root, "raw_prices", one, [day])
    back = lake.read_partitions(lake_root, "raw_prices", KEYS)
    expected = pd.concat([subset(prices, [k for k in KEYS if k != day]), one]).sort_values(["date", "ticker"])
    pd.testing.assert_frame_equal(back, expected.reset_index(drop=True), check_dtype=False)
    assert lake.materialized_keys(lake_root, "raw_prices") == KEYS


def test_a_lake_with_one_file_per_day_is_folded_into_months(lake_root, prices):
    for key in KEYS:  # the layout before month files, holidays as empty files
        path = lake_root / "raw_prices" / f"date={key}" / "data.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(lake.to_arrow(subset(prices, [key]).reset_index(drop=True)), path)
    (lake_root / "raw_prices" / f"date={KEYS[0]}" / "data.json").write_text("{}")  # a document stays
    assert lake.migrate_day_files(lake_root) == {"raw_prices": len(KEYS)}
    assert lake.materialized_keys(lake_root, "raw_prices") == KEYS
    pd.testing.assert_frame_equal(lake.read_partitions(lake_root, "raw_prices", KEYS),
                                  prices.reset_index(drop=True), check_dtype=False)
    assert not list(lake_root.rglob("date=*/data.parquet"))
    assert (lake_root / "raw_prices" / f"date={KEYS[0]}" / "data.json").exists()
    assert lake.migrate_day_files(lake_root) == {}  # nothing left to do
    with duckdb.connect(str(lake_root / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute("select count(*) from raw_prices").fetchone()[0] == len(prices)


def test_rows_outside_partitions_rejected(lake_root, prices):
    with pytest.raises(ValueError, match="2021-01-08"):
        lake.write_partitions(lake_root, "raw_prices", prices, KEYS[:-1])
    assert not (lake_root / "raw_prices").exists() or not any((lake_root / "raw_prices").rglob("*.parquet"))


def test_failure_mid_write_keeps_old_files_and_leaves_no_temp(lake_root, prices, monkeypatch):
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    old = {k: pq.read_table(lake.partition_path(lake_root, "raw_prices", k)) for k in KEYS}
    real, calls = pq.write_table, {"n": 0}

    def failing(table, where, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the second month's file
            with open(where, "wb") as fh:
                fh.write(b"PAR1 half a file")
            raise OSError("disk full")
        return real(table, where, **kw)

    monkeypatch.setattr(lake.pq, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        lake.write_partitions(lake_root, "raw_prices", prices.assign(close=1.0), KEYS)
    for k in KEYS:
        assert pq.read_table(lake.partition_path(lake_root, "raw_prices", k)).equals(old[k])
    assert not list(lake_root.rglob(".tmp-*"))


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, pandas as pd, pyarrow.parquet as pq
    from pathlib import Path
    from cnn_pipelines.storage import lake
    from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
    root, stage, keys = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
    df = SyntheticMarket(MarketConfig(n_tickers=6)).prices(keys[0], keys[-1]).assign(close=-1.0)
    real = pq.write_table
    calls = []
    def slow_write(table, where, **kw):
        calls.append(where)
        if stage == "during-write" and len(calls) == 2:
            with open(where, "wb") as fh:
                fh.write(b"PAR1 partial bytes")
            (root / "READY").touch()
            time.sleep(600)
        return real(table, where, **kw)
    def slow_replace(src, dst):
        (root / "READY").touch()
        time.sleep(600)
    lake.pq.write_table = slow_write
    if stage == "before-rename":
        lake.os.replace = slow_replace
    lake.write_partitions(root, "raw_prices", df, keys)
""")


@pytest.mark.parametrize("stage", ["during-write", "before-rename"])
def test_killed_writer_leaves_no_partial_parquet(lake_root, prices, stage):
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    old = lake.read_partitions(lake_root, "raw_prices", KEYS)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(lake_root), stage, ",".join(KEYS)])
    deadline = time.time() + 60
    while not (lake_root / "READY").exists():
        assert proc.poll() is None and time.time() < deadline, "writer did not reach the kill point"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(lake_root.rglob(".tmp-*")), "the kill left temp files behind (hidden from readers)"
    # every visible data file is complete and still holds the old data
    pd.testing.assert_frame_equal(lake.read_partitions(lake_root, "raw_prices", KEYS), old)
    lake.refresh_catalog(lake_root, ["raw_prices"])
    with duckdb.connect(str(lake_root / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute("select count(*), min(close) from raw_prices").fetchone() == (len(old), old["close"].min())
    # the next writer sweeps stale temp files
    for tmp in lake_root.rglob(".tmp-*"):
        os.utime(tmp, (time.time() - 7200, time.time() - 7200))
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    assert not list(lake_root.rglob(".tmp-*"))


def test_lookback_window_and_missing_partitions_named(lake_root, prices):
    lake.write_partitions(lake_root, "raw_prices", subset(prices, KEYS[2:]), KEYS[2:])
    window = lake.read_partitions(lake_root, "raw_prices", KEYS[4:9])
    assert sorted(pd.to_datetime(window["date"]).dt.strftime("%Y-%m-%d").unique()) == [
        k for k in KEYS[4:9] if k not in ("2020-12-25", "2021-01-01")]
    with pytest.raises(lake.MissingPartitionsError) as info:
        lake.read_partitions(lake_root, "raw_prices", KEYS[:5])
    assert info.value.missing == KEYS[:2]
    assert KEYS[0] in str(info.value) and KEYS[1] in str(info.value) and "raw_prices" in str(info.value)


def test_catalog_views_query_parquet_and_survive_a_bad_catalog(lake_root, prices):
    lake.write_partitions(lake_root, "raw_prices", subset(prices, KEYS[:5]), KEYS[:5])
    lake.ensure_views(lake_root, ["raw_prices"])
    q = "select count(*), min(date), max(date) from raw_prices"
    with duckdb.connect(str(lake_root / lake.CATALOG_FILE), read_only=True) as con:
        n, first, _ = con.execute(q).fetchone()
    assert n == len(prices[pd.to_datetime(prices["date"]) <= KEYS[4]]) and str(first) == KEYS[0]
    # new partitions show up without touching the catalog (views read by glob)
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    with duckdb.connect(str(lake_root / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute(q).fetchone()[0] == len(prices)
    # the catalog holds only views: a damaged one is rebuilt from the Parquet files
    (lake_root / lake.CATALOG_FILE).write_bytes(b"garbage" * 100)
    lake.ensure_views(lake_root, ["raw_prices"])
    with duckdb.connect(str(lake_root / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute(q).fetchone()[0] == len(prices)


def test_catalog_readable_while_a_writer_adds_partitions(lake_root, prices):
    lake.write_partitions(lake_root, "raw_prices", subset(prices, KEYS[:3]), KEYS[:3])
    lake.ensure_views(lake_root, ["raw_prices"])
    reader = duckdb.connect(str(lake_root / lake.CATALOG_FILE), read_only=True)
    try:
        lake.write_partitions(lake_root, "raw_prices", prices, KEYS)  # pipeline writes go to Parquet only
        assert reader.execute("select count(*) from raw_prices").fetchone()[0] == len(prices)
    finally:
        reader.close()


def test_window_cache_reads_a_rewritten_partition_again(tmp_path):
    from cnn_pipelines.storage.io_manager import _cached_window

    keys = ["2024-01-02", "2024-01-03"]
    df = pd.DataFrame({"date": pd.to_datetime(keys).date, "ticker": ["A", "A"], "x": [1.0, 2.0]})
    lake.write_partitions(tmp_path, "t", df, keys)
    first = _cached_window(tmp_path, "t", keys, "date", 0)
    first["y"] = 0.0  # a caller adding a column does not change what the next caller gets
    assert list(_cached_window(tmp_path, "t", keys, "date", 0).columns) == ["date", "ticker", "x"]
    lake.write_partitions(tmp_path, "t", df.assign(x=[1.0, 5.0]), keys)
    assert _cached_window(tmp_path, "t", keys, "date", 0)["x"].tolist() == [1.0, 5.0]


def _spooled(df: pd.DataFrame, pieces: int):
    from cnn_pipelines.storage.spool import SpooledTable

    spool = SpooledTable(df.iloc[:0])
    tickers = sorted(df["ticker"].unique())
    for i in range(pieces):
        spool.add(df[df["ticker"].isin(tickers[i::pieces])].sample(frac=1.0, random_state=i))  # any row order
    return spool


@pytest.mark.parametrize("pieces", [1, 4])
def test_a_table_spooled_in_ticker_pieces_is_stored_as_if_written_whole(lake_root, prices, pieces):
    """Issue 30: the indicator panel of a large universe is written shard by shard through a spool, one month in
    memory at a time. The lake must hold exactly what one write of the whole table holds: same month files, same
    days (holidays as empty days), and the days of a month outside the run kept."""
    other = lake_root / "other"
    lake.write_partitions(lake_root, "raw_prices", subset(prices, KEYS[:3]), KEYS[:3])
    lake.write_partitions(other, "raw_prices", subset(prices, KEYS[:3]), KEYS[:3])
    keys = KEYS[2:]
    spool = _spooled(subset(prices, keys), pieces)
    counts = lake.write_spooled(lake_root, "raw_prices", spool, keys)
    assert counts == lake.write_partitions(other, "raw_prices", subset(prices, keys), keys)
    for k in KEYS:
        a = pq.read_table(lake.partition_path(lake_root, "raw_prices", k))
        b = pq.read_table(lake.partition_path(other, "raw_prices", k))
        assert a.equals(b) and a.schema.metadata[lake.DAYS_META] == b.schema.metadata[lake.DAYS_META]
    spool.close()
    assert not spool.dir.exists()


def test_a_spooled_write_that_fails_or_strays_keeps_every_stored_month(lake_root, prices, monkeypatch):
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    old = {k: pq.read_table(lake.partition_path(lake_root, "raw_prices", k)) for k in KEYS}
    with pytest.raises(ValueError, match="2021-01-08"):
        lake.write_spooled(lake_root, "raw_prices", _spooled(prices.assign(close=2.0), 3), KEYS[:-1])
    real, calls = pq.write_table, {"n": 0}

    def failing(table, where, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the second month's file
            raise OSError("disk full")
        return real(table, where, **kw)

    spool = _spooled(prices.assign(close=1.0), 2)
    monkeypatch.setattr(lake.pq, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        lake.write_spooled(lake_root, "raw_prices", spool, KEYS)
    for k in KEYS:
        assert pq.read_table(lake.partition_path(lake_root, "raw_prices", k)).equals(old[k])
    assert not list(lake_root.rglob(".tmp-*"))


def test_months_are_staged_one_at_a_time_not_all_held_in_memory(lake_root, prices):
    """The panel of a large universe is committed month by month from a generator: each month must be staged
    on disk before the next is made, or the whole table sits in memory at once (7 GB at 3,000 names)."""
    import pyarrow as pa

    staged_before_next = []

    def months():
        for i, month in enumerate(("2020-12", "2021-01")):
            if i:
                staged_before_next.append(len(list(lake_root.rglob(".tmp-*"))))
            yield lake.month_path(lake_root, "t", month), pa.table({"x": [i]})

    lake.write_tables_atomically(months())
    assert staged_before_next == [1]
    assert [pq.read_table(lake.month_path(lake_root, "t", m)).column("x")[0].as_py() for m in ("2020-12", "2021-01")] == [0, 1]


def test_a_view_whose_file_another_writer_replaced_mid_read_is_defined_on_the_next_try(lake_root, prices, monkeypatch):
    """On object storage DuckDB reads a month's schema when it defines a view; a second worker replacing that
    month meanwhile made fsspec raise FileExpired, and the first worker's run failed (the cluster test, once on
    CI). Defining the view again reads the new object whole. Any other DuckDB error still surfaces."""
    lake.write_partitions(lake_root, "raw_prices", prices, KEYS)
    real, calls = lake.connect, []

    def flaky(root, read_only=True):
        calls.append(read_only)
        if not read_only and len(calls) == 1:
            raise duckdb.IOException("FileExpired: [Errno 16] The remote file corresponding to filename "
                                     "b/raw_prices/month=2021-06/data.parquet and Etag \"x\" no longer exists.")
        return real(root, read_only)

    monkeypatch.setattr(lake, "connect", flaky)
    assert lake.refresh_catalog(lake_root, ["raw_prices"]) == ["raw_prices"] and len(calls) == 2
    assert "raw_prices" in lake.catalog_views(lake_root)

    def broken(root, read_only=True):
        raise duckdb.IOException("IO Error: No files found that match the pattern")

    monkeypatch.setattr(lake, "connect", broken)
    with pytest.raises(duckdb.IOException, match="No files found"):
        lake.refresh_catalog(lake_root, ["raw_prices"])
    attempts = []

    def replaced_twice():
        attempts.append(1)
        if len(attempts) < 3:
            raise duckdb.IOException("FileExpired: ... no longer exists")
        return "read"

    assert lake.retry_replaced(replaced_twice) == "read" and len(attempts) == 3
