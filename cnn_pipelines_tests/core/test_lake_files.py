"""The lake's small file operations: where each table and partition lives, atomic single-file writes, what a
reader is told when a partition is missing, and the catalog's views. Everything the pipeline stores goes
through these."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cnn_pipelines.storage import lake


def days(*keys: str) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.to_datetime(list(keys)).date, "ticker": ["A"] * len(keys),
                         "x": np.arange(len(keys), dtype=float)})


def test_paths_of_tables_months_periods_and_documents(tmp_path):
    assert lake.table_dir(tmp_path, "raw_prices") == tmp_path / "raw_prices"
    with pytest.raises(ValueError, match="not a plain identifier"):
        lake.table_dir(tmp_path, "../etc")
    assert lake.partition_path(tmp_path, "t", "2021-03-04") == tmp_path / "t" / "month=2021-03" / "data.parquet"
    assert lake.month_path(tmp_path, "t", "2021-03") == tmp_path / "t" / "month=2021-03" / "data.parquet"
    assert lake.partition_path(tmp_path, "t", "2021-03-01", "period") == tmp_path / "t" / "period=2021-03-01" / "data.parquet"
    assert lake.partition_path(tmp_path, "t", "2021-03-01", "period", "data.json") == \
        tmp_path / "t" / "period=2021-03-01" / "data.json"
    assert lake.partition_path(tmp_path, "t", "2021-03-04", "date", "x.json") == tmp_path / "t" / "date=2021-03-04" / "x.json"
    assert lake.unpartitioned_path(tmp_path, "t") == tmp_path / "t" / "data.parquet"


def test_the_lake_root_is_the_setting_or_data_lake(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_LAKE_ROOT", str(tmp_path / "elsewhere"))
    assert lake.default_root() == tmp_path / "elsewhere"
    monkeypatch.setenv("CNN_LAKE_ROOT", "")
    monkeypatch.chdir(tmp_path)
    assert lake.default_root() == Path("data_lake")


def test_single_tables_round_trip_and_leave_no_temp_file(tmp_path):
    df = days("2021-03-04", "2021-03-05")
    path = lake.write_table(tmp_path, "t", df)
    assert path == tmp_path / "t" / "data.parquet"
    back = lake.read_table(tmp_path, "t")
    assert back["date"].tolist() == df["date"].tolist() and back["x"].tolist() == [0.0, 1.0]
    assert str(pq.read_schema(path).field("date").type) == "date32[day]"
    part = lake.write_table(tmp_path, "m", df, key="2021-03-01")
    assert part == tmp_path / "m" / "period=2021-03-01" / "data.parquet"
    assert lake.read_partitions(tmp_path, "m", ["2021-03-01"], "period")["x"].tolist() == [0.0, 1.0]
    assert lake.write_table(tmp_path, "m2", df, key="v1", column="version") == tmp_path / "m2" / "version=v1" / "data.parquet"
    assert [p.name for p in (tmp_path / "t").iterdir()] == ["data.parquet"]
    with pytest.raises(lake.MissingPartitionsError, match="not_there"):
        lake.read_table(tmp_path, "not_there")


def test_json_and_npy_are_written_atomically(tmp_path):
    doc = tmp_path / "a" / "b" / "doc.json"
    assert lake.write_json(doc, {"x": 1, "when": pd.Timestamp("2021-01-02")}) == doc
    assert lake.read_json(doc) == {"x": 1, "when": "2021-01-02 00:00:00"}
    assert json.loads(doc.read_text()) == lake.read_json(doc) and "\n" in doc.read_text()  # indented
    lake.write_json(doc, {"x": 2})
    assert lake.read_json(doc) == {"x": 2} and sorted(p.name for p in doc.parent.iterdir()) == ["doc.json"]
    arr = tmp_path / "c" / "d" / "w.npy"
    assert lake.write_npy(arr, np.arange(6.0).reshape(2, 3)) == arr
    np.testing.assert_array_equal(np.load(arr), np.arange(6.0).reshape(2, 3))
    assert sorted(p.name for p in arr.parent.iterdir()) == ["w.npy"]
    with pytest.raises(ValueError):
        lake.write_npy(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))  # no pickles, and no temp file left
    with pytest.raises(TypeError):
        lake.write_json(tmp_path / "bad.json", {"x": object.__new__(type("NoStr", (), {"__str__": None}))})
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_missing_partitions_are_named_and_at_most_ten_shown():
    few = lake.MissingPartitionsError("t", ["k1", "k2"])
    assert few.table == "t" and few.missing == ["k1", "k2"]
    assert str(few).startswith("t: 2 upstream partition(s) not materialized: k1, k2. Materialize them first")
    many = lake.MissingPartitionsError("t", [f"k{i:02d}" for i in range(12)])
    assert "k09, ... (12 in all)" in str(many) and "k10" not in str(many)
    ten = lake.MissingPartitionsError("t", [f"k{i}" for i in range(10)])
    assert "in all" not in str(ten)


def test_period_tables_read_in_key_order_with_an_optional_tail(tmp_path):
    for i, key in enumerate(["2021-01-01", "2021-02-01", "2021-03-01"]):
        lake.write_table(tmp_path, "p", days("2021-01-04").assign(x=float(i)), key=key)
    got = lake.read_partitions(tmp_path, "p", ["2021-02-01", "2021-01-01"], "period")
    assert got["x"].tolist() == [1.0, 0.0]
    tail = lake.read_partitions(tmp_path, "p", ["2021-03-01", "2021-04-01"], "period", optional_tail=1)
    assert tail["x"].tolist() == [2.0]
    with pytest.raises(lake.MissingPartitionsError) as err:
        lake.read_partitions(tmp_path, "p", ["2021-04-01", "2021-03-01"], "period", optional_tail=1)
    assert err.value.missing == ["2021-04-01"]
    with pytest.raises(lake.MissingPartitionsError):
        lake.read_partitions(tmp_path, "p", ["2021-05-01"], "period", optional_tail=1)
    assert lake.materialized_keys(tmp_path, "p", "period") == ["2021-01-01", "2021-02-01", "2021-03-01"]
    assert lake.materialized_keys(tmp_path, "nothing") == []


def test_day_tables_read_an_optional_tail_and_name_what_is_missing(tmp_path):
    keys = ["2021-01-28", "2021-01-29", "2021-02-01"]
    lake.write_partitions(tmp_path, "d", days(*keys[:2]), keys[:2])
    got = lake.read_partitions(tmp_path, "d", keys, optional_tail=1)
    assert [str(d) for d in got["date"]] == keys[:2]
    with pytest.raises(lake.MissingPartitionsError) as err:
        lake.read_partitions(tmp_path, "d", keys)
    assert err.value.missing == ["2021-02-01"]
    with pytest.raises(lake.MissingPartitionsError):
        lake.read_partitions(tmp_path, "d", ["2021-02-01"], optional_tail=1)
    assert lake.held_keys(tmp_path, "d", ["2021-01-27", *keys]) == keys[:2]
    assert lake.materialized_keys(tmp_path, "d") == keys[:2]
    one = lake.read_partitions(tmp_path, "d", ["2021-01-29"])
    assert [str(d) for d in one["date"]] == ["2021-01-29"]


def test_day_partitions_record_empty_days_and_refuse_stray_rows(tmp_path):
    counts = lake.write_partitions(tmp_path, "d", days("2021-01-04"), ["2021-01-01", "2021-01-04"])
    assert counts == {"2021-01-01": 0, "2021-01-04": 1}
    assert lake.month_days(lake.month_path(tmp_path, "d", "2021-01")) == {"2021-01-01", "2021-01-04"}
    assert lake.month_days(lake.month_path(tmp_path, "d", "2021-02")) == set()
    with pytest.raises(ValueError, match=r"rows dated \['2021-01-05'\] fall outside"):
        lake.write_partitions(tmp_path, "d", days("2021-01-05"), ["2021-01-04"])
    with pytest.raises(ValueError, match="needs a 'date' column"):
        lake.write_partitions(tmp_path, "d", pd.DataFrame({"x": [1]}), ["2021-01-04"])
    assert lake.write_partitions(tmp_path, "e", days(), ["2021-01-04"]) == {"2021-01-04": 0}
    rows = pq.read_table(lake.month_path(tmp_path, "d", "2021-01"))
    assert b"pandas" not in (rows.schema.metadata or {})


def test_stale_temp_files_are_removed_only_when_old(tmp_path):
    old, new = tmp_path / "x" / ".tmp-old.parquet", tmp_path / ".tmp-new.parquet"
    old.parent.mkdir()
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    keep = tmp_path / "data.parquet"
    keep.write_bytes(b"z")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    os.utime(keep, (time.time() - 7200, time.time() - 7200))
    assert lake.cleanup_stale_tmp(tmp_path) == 1
    assert not old.exists() and new.exists() and keep.exists()
    assert lake.cleanup_stale_tmp(tmp_path, older_than_s=-1) == 1 and not new.exists()


def test_catalog_views_for_day_period_and_single_tables(tmp_path):
    lake.write_partitions(tmp_path, "d", days("2021-01-04", "2021-02-01"), ["2021-01-04", "2021-02-01"])
    lake.write_table(tmp_path, "p", days("2021-01-04"), key="2021-01-01")
    lake.write_table(tmp_path, "s", days("2021-01-04", "2021-01-05"))
    (tmp_path / "empty_dir").mkdir()
    assert lake.catalog_views(tmp_path) == set()
    assert sorted(lake.refresh_catalog(tmp_path)) == ["d", "p", "s"]
    assert lake.catalog_views(tmp_path) == {"d", "p", "s"}
    with duckdb.connect(str(tmp_path / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute("select count(*) from d").fetchone()[0] == 2
        assert [c[0] for c in con.execute("describe d").fetchall()] == ["date", "ticker", "x"]  # no month column
        assert "period" in [c[0] for c in con.execute("describe p").fetchall()]
        assert con.execute("select count(*) from s").fetchone()[0] == 2
    assert lake.refresh_catalog(tmp_path, ["empty_dir"]) == []
    assert lake.ensure_views(tmp_path, ["d", "s"]) == []
    lake.write_table(tmp_path, "n", days("2021-01-04"))
    assert lake.ensure_views(tmp_path, ["d", "n"]) == ["n"]
    lake.define_view(tmp_path, "d_count", "SELECT count(*) AS n FROM d")
    with duckdb.connect(str(tmp_path / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute("select n from d_count").fetchone()[0] == 2
    with pytest.raises(ValueError, match="view name"):
        lake.define_view(tmp_path, "bad name", "SELECT 1")
    assert lake.rebuild_catalog(tmp_path) == ["d", "n", "p", "s", "d_count"]  # derived views are recorded
    with duckdb.connect(str(tmp_path / lake.CATALOG_FILE), read_only=True) as con:
        assert con.execute("select n from d_count").fetchone()[0] == 2


def test_a_damaged_catalog_reads_as_unknown_and_is_rebuilt(tmp_path):
    lake.write_table(tmp_path, "s", days("2021-01-04"))
    (tmp_path / lake.CATALOG_FILE).write_bytes(b"not a database" * 100)
    assert lake.catalog_views(tmp_path) is None
    assert lake.ensure_views(tmp_path, ["s"]) == ["s"]
    assert lake.catalog_views(tmp_path) == {"s"}
    assert lake._is_lock_conflict(Exception("Could not set lock on file")) and not lake._is_lock_conflict(Exception("x"))


def test_a_lake_whose_path_has_a_quote_still_has_a_catalog(tmp_path):
    root = tmp_path / "o'brien's lake"
    lake.write_partitions(root, "d", days("2021-01-04"), ["2021-01-04"])
    lake.write_table(root, "p", days("2021-01-04"), key="2021-01-01")
    lake.write_table(root, "s", days("2021-01-04"))
    assert sorted(lake.refresh_catalog(root)) == ["d", "p", "s"]
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        assert [con.execute(f"select count(*) from {t}").fetchone()[0] for t in ("d", "p", "s")] == [1, 1, 1]


def test_months_written_before_a_column_existed_read_with_it_as_missing(tmp_path):
    lake.write_partitions(tmp_path, "d", days("2021-01-04"), ["2021-01-04"])
    lake.write_partitions(tmp_path, "d", days("2021-02-01").assign(adjustment=0.5), ["2021-02-01"])
    both = lake.read_partitions(tmp_path, "d", ["2021-01-04", "2021-02-01"])
    assert list(both.columns) == ["date", "ticker", "x", "adjustment"]
    assert np.isnan(both["adjustment"].iloc[0]) and both["adjustment"].iloc[1] == 0.5
    # a new day in the old month takes the new column; the old month's kept rows get it as missing
    lake.write_partitions(tmp_path, "d", days("2021-01-05").assign(adjustment=1.0), ["2021-01-05"])
    jan = lake.read_partitions(tmp_path, "d", ["2021-01-04", "2021-01-05"])
    assert list(jan.columns) == ["date", "ticker", "x", "adjustment"]
    assert np.isnan(jan["adjustment"].iloc[0]) and jan["adjustment"].iloc[1] == 1.0
    assert lake.month_days(lake.month_path(tmp_path, "d", "2021-01")) == {"2021-01-04", "2021-01-05"}


def test_month_files_are_sorted_by_date_then_ticker_and_carry_only_the_days_metadata(tmp_path):
    df = pd.DataFrame({"date": pd.to_datetime(["2021-01-05", "2021-01-04", "2021-01-04"]).date,
                       "ticker": ["A", "B", "A"], "x": [1.0, 2.0, 3.0]})
    lake.write_partitions(tmp_path, "d", df, ["2021-01-04", "2021-01-05"])
    t = pq.read_table(lake.month_path(tmp_path, "d", "2021-01"))
    assert t.column("ticker").to_pylist() == ["A", "B", "A"] and t.column("x").to_pylist() == [3.0, 2.0, 1.0]
    assert set(t.schema.metadata) == {lake.DAYS_META}
    undated = pd.DataFrame({"date": pd.to_datetime(["2021-01-05", "2021-01-04"]).date, "x": [1.0, 2.0]})
    lake.write_partitions(tmp_path, "u", undated, ["2021-01-04", "2021-01-05"])
    assert pq.read_table(lake.month_path(tmp_path, "u", "2021-01")).column("x").to_pylist() == [2.0, 1.0]


def test_types_follow_the_first_month_that_has_rows(tmp_path):
    lake.write_partitions(tmp_path, "d", days().astype({"x": "float32"}), ["2021-01-04"])  # an empty day first
    lake.write_partitions(tmp_path, "d", days("2021-02-01"), ["2021-02-01"])
    lake.write_partitions(tmp_path, "d", days("2021-03-01").astype({"x": "float32"}), ["2021-03-01"])
    got = lake.read_partitions(tmp_path, "d", ["2021-01-04", "2021-02-01", "2021-03-01"])
    assert got["x"].dtype == "float64" and len(got) == 2


def test_every_stale_temp_file_is_counted(tmp_path):
    for name in (".tmp-a.parquet", ".tmp-b.json"):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (time.time() - 7200, time.time() - 7200))
    assert lake.cleanup_stale_tmp(tmp_path) == 2


def test_a_rebuild_discards_a_damaged_write_ahead_log_too(tmp_path):
    lake.write_table(tmp_path, "s", days("2021-01-04"))
    assert lake.rebuild_catalog(tmp_path) == ["s"]  # no catalog and no log yet: nothing to remove
    (tmp_path / lake.CATALOG_FILE).write_bytes(b"garbage" * 50)
    (tmp_path / f"{lake.CATALOG_FILE}.wal").write_bytes(b"garbage" * 50)
    assert lake.rebuild_catalog(tmp_path) == ["s"]
    assert lake.catalog_views(tmp_path) == {"s"}


def test_timestamps_in_the_date_column_are_stored_as_dates(tmp_path):
    df = days("2021-01-04").assign(date=pd.Timestamp("2021-01-04 00:00"))
    path = lake.write_table(tmp_path, "s", df)
    assert str(pq.read_schema(path).field("date").type) == "date32[day]"
    assert lake.to_arrow(pd.DataFrame({"x": [1]})).schema.names == ["x"]  # no date column: nothing to convert
