"""Issue 30, the lake on object storage: an ``s3://bucket/prefix`` root holds what a local lake holds, through
the same functions, with one PUT per file and conditional writes (ETags) where the local lake takes a file lock;
tested against a real S3-API server (moto's) on 127.0.0.1."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_pipelines.storage import lake, objects
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket

KEYS = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2020-12-21", "2021-01-08")]
PRICES = SyntheticMarket(MarketConfig(n_tickers=5)).prices(KEYS[0], KEYS[-1])


def subset(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df[pd.to_datetime(df["date"]).dt.strftime("%Y-%m-%d").isin(keys)]


def test_a_root_on_s3_is_a_path_into_the_bucket(s3_root):
    root = lake.as_root(s3_root)
    assert objects.is_remote(root) and not objects.is_remote(lake.as_root("data_lake"))
    assert str(lake.month_path(root, "raw_prices", "2021-01")) == f"{s3_root}/raw_prices/month=2021-01/data.parquet"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        lake.as_root("s3:///no-bucket")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.sampled_from(KEYS), min_size=1, max_size=8, unique=True), min_size=1, max_size=4),
       bump=st.integers(0, 3))
def test_any_sequence_of_writes_leaves_the_s3_lake_equal_to_the_local_one(s3_root, tmp_path_factory, batches, bump):
    """Batches of day partitions, overlapping, in any order, some re-written with new prices: the bucket and a
    local folder given the same writes hold the same days and the same rows."""
    import uuid

    s3 = lake.as_root(f"{s3_root}-{uuid.uuid4().hex[:6]}")
    local = tmp_path_factory.mktemp("local")
    for i, keys in enumerate(batches):
        frame = subset(PRICES, keys).assign(close=lambda d: d["close"] * (1 + (i == bump)))
        assert lake.write_partitions(s3, "raw_prices", frame, keys) == lake.write_partitions(local, "raw_prices", frame, keys)
    held = lake.materialized_keys(local, "raw_prices")
    assert lake.materialized_keys(s3, "raw_prices") == held == sorted({k for b in batches for k in b})
    pd.testing.assert_frame_equal(lake.read_partitions(s3, "raw_prices", held),
                                  lake.read_partitions(local, "raw_prices", held))
    assert lake.held_keys(s3, "raw_prices", KEYS) == held


def test_a_writer_that_loses_the_race_for_a_month_keeps_the_winners_days(s3_root, monkeypatch):
    """Two writers of one month: the second commits between the first one's read and its PUT. The first one's
    conditional PUT fails on the changed ETag, so it reads the month again and both days survive (an
    unconditional PUT would silently drop the winner's day)."""
    root = lake.as_root(s3_root)
    lake.write_partitions(root, "raw_prices", subset(PRICES, KEYS[:1]), KEYS[:1])
    real, raced = objects.read_object, {"n": 0}

    def read_then_race(path):
        table = real(path)
        if raced["n"] == 0:
            raced["n"] += 1
            lake.write_partitions(root, "raw_prices", subset(PRICES, [KEYS[2]]), [KEYS[2]])  # the other writer
        return table

    monkeypatch.setattr(objects, "read_object", read_then_race)
    lake.write_partitions(root, "raw_prices", subset(PRICES, [KEYS[1]]), [KEYS[1]])
    assert raced["n"] == 1
    assert lake.materialized_keys(root, "raw_prices") == KEYS[:3]
    assert len(lake.read_partitions(root, "raw_prices", KEYS[:3])) == len(subset(PRICES, KEYS[:3]))


def test_concurrent_writers_of_one_month_lose_nothing(s3_root):
    root = lake.as_root(s3_root)
    december = [k for k in KEYS if k.startswith("2020-12")]
    errors: list[BaseException] = []

    def write(day: str) -> None:
        try:
            lake.write_partitions(root, "raw_prices", subset(PRICES, [day]), [day])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(d,)) for d in december]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert lake.materialized_keys(root, "raw_prices") == december


def test_a_failed_write_keeps_every_stored_object(s3_root, monkeypatch):
    root = lake.as_root(s3_root)
    lake.write_partitions(root, "raw_prices", PRICES, KEYS)
    tags = {m: objects.etag(lake.month_path(root, "raw_prices", m)) for m in ("2020-12", "2021-01")}
    with pytest.raises(ValueError, match="2021-01-08"):  # rows outside the keys: refused before any PUT
        lake.write_partitions(root, "raw_prices", PRICES.assign(close=0.0), KEYS[:-1])
    real = objects.put

    def broken(path, data, **kw):
        if "2021-01" in str(path):
            raise ConnectionError("the connection dropped during the upload")
        return real(path, data, **kw)

    monkeypatch.setattr(objects, "put", broken)
    with pytest.raises(ConnectionError):
        lake.write_partitions(root, "raw_prices", PRICES.assign(close=0.0), KEYS)
    monkeypatch.undo()
    # the upload failed while the months were staged, before the commit: neither month changed
    assert {m: objects.etag(lake.month_path(root, "raw_prices", m)) for m in tags} == tags
    pd.testing.assert_frame_equal(lake.read_partitions(root, "raw_prices", KEYS),
                                  PRICES.reset_index(drop=True), check_dtype=False)
    lake.write_partitions(root, "raw_prices", PRICES.assign(close=0.0), KEYS)
    assert (lake.read_partitions(root, "raw_prices", KEYS)["close"] == 0.0).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(KEYS[:5]), span=st.integers(6, len(KEYS) - 1), dies_at=st.integers(0, 12))
def test_a_writer_that_dies_anywhere_leaves_its_months_all_old_or_all_new(s3_root, first, span, dies_at):
    """A write spanning two months whose writer dies at its ``dies_at``-th PUT: the next reader sees every
    day of the write old, or every day new (the commit record decides; a reader finishes a committed write),
    never December new and January old; and no commit is left pending."""
    import uuid

    root = lake.as_root(f"{s3_root}-{uuid.uuid4().hex[:6]}")
    keys = KEYS[KEYS.index(first):KEYS.index(first) + span]
    lake.write_partitions(root, "raw_prices", PRICES, KEYS)
    real, calls = objects.put, {"n": 0}

    def dying(path, data, **kw):
        if calls["n"] == dies_at:
            raise SystemExit("the worker was killed")
        calls["n"] += 1
        return real(path, data, **kw)

    objects.put = dying
    try:
        died = False
        try:
            lake.write_partitions(root, "raw_prices", subset(PRICES, keys).assign(close=-1.0), keys)
        except SystemExit:
            died = True
    finally:
        objects.put = real
    closes = lake.read_partitions(root, "raw_prices", KEYS).set_index(["date", "ticker"])["close"]
    written = closes[pd.to_datetime(closes.index.get_level_values("date")).strftime("%Y-%m-%d").isin(keys)]
    assert (written == -1.0).all() or not (written == -1.0).any(), f"half a write is visible ({dies_at=})"
    assert (written == -1.0).all() == (not died or dies_at >= 3)  # 2 staged months, then the record
    assert lake.finish_commits(root, "raw_prices") == []
    untouched = closes[~closes.index.isin(written.index)]
    assert (untouched > 0).all()


def test_a_write_applied_late_never_replaces_newer_rows_of_its_days(s3_root):
    """A reader that finishes a commit slowly (it read the staged rows, then a newer write of the same days landed)
    must not put the older rows back: each month file records which write last set each day."""
    root = lake.as_root(s3_root)
    lake.write_partitions(root, "raw_prices", PRICES, KEYS)
    old_id = lake.new_write_id()
    lake.write_partitions(root, "raw_prices", PRICES.assign(close=-2.0), KEYS)  # the newer write
    late = lake.to_arrow(subset(PRICES, KEYS[:3]).assign(close=-1.0))
    lake._put_month(lake.month_path(root, "raw_prices", "2020-12"), late, KEYS[:3], old_id)  # applied late
    assert (lake.read_partitions(root, "raw_prices", KEYS)["close"] == -2.0).all()
    newer = lake.to_arrow(subset(PRICES, KEYS[:3]).assign(close=-3.0))
    lake._put_month(lake.month_path(root, "raw_prices", "2020-12"), newer, KEYS[:3], lake.new_write_id())
    closes = lake.read_partitions(root, "raw_prices", KEYS[:3])["close"]
    assert (closes == -3.0).all() and lake.materialized_keys(root, "raw_prices") == KEYS


def test_documents_tables_and_arrays_round_trip(s3_root):
    root = lake.as_root(s3_root)
    doc = lake.write_json(lake.partition_path(root, "image_layout", "2021-01-29", "period", "data.json"), {"a": [1, 2]})
    assert lake.read_json(doc) == {"a": [1, 2]} and lake.read_json(str(doc)) == {"a": [1, 2]}
    frame = pd.DataFrame({"feature": ["x", "y"], "mi": [0.5, 0.25]})
    lake.write_table(root, "feature_selection", frame, "2021-01-29")
    pd.testing.assert_frame_equal(lake.read_partitions(root, "feature_selection", ["2021-01-29"], "period"), frame)
    assert lake.materialized_keys(root, "feature_selection", "period") == ["2021-01-29"]
    with pytest.raises(lake.MissingPartitionsError, match="2021-02-26"):
        lake.read_partitions(root, "feature_selection", ["2021-01-29", "2021-02-26"], "period")
    lake.write_table(root, "study", frame)
    pd.testing.assert_frame_equal(lake.read_table(root, "study"), frame)
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    lake.write_npy(root / "arrays" / "x.npy", arr)
    import io

    assert np.array_equal(np.load(io.BytesIO((root / "arrays" / "x.npy").read_bytes())), arr)
    assert lake.write_bytes(root / "models" / "m.bin", b"\x00model").read_bytes() == b"\x00model"


def test_duckdb_queries_the_bucket_through_a_local_catalog(s3_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path))
    root = lake.as_root(s3_root)
    lake.write_partitions(root, "raw_prices", subset(PRICES, KEYS[:5]), KEYS[:5])
    assert lake.ensure_views(root, ["raw_prices"]) == ["raw_prices"]
    assert lake.catalog_path(root).parent == tmp_path and lake.catalog_path(root).exists()
    q = "select count(*), min(date), max(date) from raw_prices"
    with lake.connect(root) as con:
        n, first, _ = con.execute(q).fetchone()
    assert n == len(subset(PRICES, KEYS[:5])) and str(first) == KEYS[0]
    lake.write_partitions(root, "raw_prices", PRICES, KEYS)  # new months appear without touching the catalog
    with lake.connect(root) as con:
        assert con.execute(q).fetchone()[0] == len(PRICES)
    lake.catalog_path(root).write_bytes(b"garbage" * 100)   # views only: a damaged catalog is rebuilt
    assert lake.ensure_views(root, ["raw_prices"]) == ["raw_prices"]
    with lake.connect(root) as con:
        assert con.execute(q).fetchone()[0] == len(PRICES)


def test_every_machine_s_catalog_gets_the_tables_and_views_others_added(s3_root, tmp_path, monkeypatch):
    """Each machine keeps its own DuckDB catalog of a bucket; tables and derived views that assets on other
    machines created appear in it at its next materialization (or study view) without a rebuild."""
    root = lake.as_root(s3_root)
    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "machine-a"))
    lake.write_partitions(root, "raw_prices", subset(PRICES, KEYS[:5]), KEYS[:5])
    lake.ensure_views(root, ["raw_prices"])
    lake.define_view(root, "price_count", "SELECT count(*) AS n FROM raw_prices")
    lake.write_table(root, "study", pd.DataFrame({"x": [1, 2]}))
    lake.ensure_views(root, ["study"])
    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "machine-b"))  # a machine that ran none of it
    assert lake.catalog_views(root) == set()
    lake.write_table(root, "other", pd.DataFrame({"y": [3]}))
    assert sorted(lake.ensure_views(root, ["other"])) == ["other", "price_count", "raw_prices", "study"]
    with lake.connect(root) as con:
        assert con.execute("select n from price_count").fetchone()[0] == len(subset(PRICES, KEYS[:5]))
        assert con.execute("select sum(x) from study").fetchone()[0] == 3
    assert lake.ensure_views(root, ["other"]) == []  # nothing new: nothing done


def test_a_wrong_bucket_or_server_is_named_at_start(s3_server):
    from cnn_pipelines.cluster.servers import ServerError, check_cluster_env

    assert objects.check_bucket(s3_server) is None
    why = objects.check_bucket("s3://no-such-bucket/lake")
    assert "bucket 'no-such-bucket' does not exist at http://127.0.0.1:" in why and "CNN_S3_ENDPOINT" in why
    import os

    env = {**os.environ, "CNN_LAKE_ROOT": "s3://no-such-bucket/lake", "CNN_POSTGRES_URL": "", "CNN_CELERY_BROKER": ""}
    with pytest.raises(ServerError, match=r"CNN_LAKE_ROOT: s3://no-such-bucket/lake: bucket 'no-such-bucket'"):
        check_cluster_env(env, timeout_s=2)


def test_the_trading_features_built_on_s3_equal_those_built_locally(s3_root, tmp_path, monkeypatch):
    """The price and feature assets, unchanged, through the lake's IO manager: a bucket and a local folder end
    with the same tables, value for value."""
    import dagster as dg

    from cnn_pipelines.trading.features.assets import SETTINGS, forward_returns, indicator_panel, universe
    from cnn_pipelines.trading.prices.assets import raw_prices
    from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

    from cnn_pipelines_tests.conftest import lake_resources, run_range

    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "catalogs"))
    first = pd.bdate_range(end="2014-03-03", periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    roots = {"s3": lake.as_root(s3_root), "local": tmp_path / "lake"}
    features = [universe, indicator_panel, forward_returns]
    for root in roots.values():
        res = lake_resources(root, SyntheticPriceSource(n_tickers=6, seed=5))
        assert run_range([raw_prices], first, "2014-03-14", res).success
        assert run_range([raw_prices.to_source_asset(), *features], "2014-03-03", "2014-03-14", res,
                         selection=dg.AssetSelection.assets(*features)).success
    for table in ("raw_prices", "universe", "indicator_panel", "forward_returns"):
        keys = lake.materialized_keys(roots["local"], table)
        assert keys and lake.materialized_keys(roots["s3"], table) == keys, table
        pd.testing.assert_frame_equal(lake.read_partitions(roots["s3"], table, keys),
                                      lake.read_partitions(roots["local"], table, keys))
    with lake.connect(roots["s3"]) as con:
        assert con.execute("select count(*) from indicator_panel").fetchone()[0] == len(
            lake.read_partitions(roots["local"], "indicator_panel", lake.materialized_keys(roots["local"], "indicator_panel")))


def test_a_research_month_trained_on_s3_equals_one_trained_locally(s3_root, tmp_path, monkeypatch):
    """A walk-forward month (selection, layout, images, the CNN with its checkpoints, predictions) on the bucket:
    checkpoints are written to the local mirror and uploaded, and every number equals the local lake's."""
    import dagster as dg

    from cnn_pipelines.storage import objects
    from cnn_pipelines.trading.features.assets import SETTINGS, forward_returns, indicator_panel, universe
    from cnn_pipelines.trading.prices.assets import raw_prices
    from cnn_pipelines.trading.prices.resources import SyntheticPriceSource
    from cnn_pipelines.trading.research.assets import (CALENDAR, CHAIN_START_TAG, RS, cnn_images, cnn_model,
                                                       feature_selection, image_layout, oos_predictions)
    from cnn_pipelines.trading.research.walkforward import fold_for

    from cnn_pipelines_tests.conftest import lake_resources, run_range

    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "catalogs"))
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "mirror"))
    period = "2015-03-01"
    fold = fold_for(period, RS, CALENDAR)
    feat_start = pd.bdate_range(end=fold.train_start, periods=2)[0].strftime("%Y-%m-%d")
    feat_end = (pd.Timestamp(period) + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")
    price_start = pd.bdate_range(end=feat_start, periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    price_end = (pd.Timestamp(feat_end) + pd.offsets.BDay(10)).strftime("%Y-%m-%d")
    research = [feature_selection, image_layout, cnn_images, cnn_model, oos_predictions]
    features = [universe, indicator_panel, forward_returns]
    roots = {"s3": lake.as_root(s3_root), "local": tmp_path / "lake"}
    for root in roots.values():
        res = lake_resources(root, SyntheticPriceSource(n_tickers=10, seed=8, signal_strength=0.3))
        assert run_range([raw_prices], price_start, price_end, res).success
        assert run_range([raw_prices.to_source_asset(), *features], feat_start, feat_end, res,
                         selection=dg.AssetSelection.assets(*features)).success
        sources = [a.to_source_asset() for a in (raw_prices, *features)]
        assert dg.materialize([*sources, *research], partition_key=period, resources=res,
                              tags={CHAIN_START_TAG: period}).success
    mirror = objects.local_mirror(roots["s3"] / "models" / "cnn" / period)
    uploaded = sorted(p.rsplit("/", 1)[-1] for p in objects.filesystem().find(objects.key(roots["s3"] / "models" / "cnn" / period)))
    assert uploaded == sorted(p.name for p in mirror.iterdir() if not p.name.startswith(".")) and "state.json" in uploaded
    for table in ("feature_selection", "cnn_images", "oos_predictions"):
        a = lake.read_partitions(roots["s3"], table, [period], "period")
        b = lake.read_partitions(roots["local"], table, [period], "period")
        pd.testing.assert_frame_equal(a, b, rtol=1e-6, atol=1e-6)
    docs = [lake.read_json(lake.partition_path(r, "cnn_model", period, "period", "data.json")) for r in roots.values()]
    assert docs[0]["ensemble"] == docs[1]["ensemble"]


def test_each_machines_mirror_follows_the_bucket(s3_root, tmp_path, monkeypatch):
    """Artifacts written on machine A (its own CNN_LAKE_CACHE) reach machine B through the bucket: a refit of the
    same size is fetched again (ETags, not sizes), a file the bucket no longer has leaves B's checkpoint folder,
    and a path A recorded in a lake document is found in B's mirror."""
    root = lake.as_root(s3_root)
    folder = ("models", "cnn", "2021-01-01")
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "a"))
    on_a = lake.artifact_dir(root, *folder)
    lake.write_bytes(on_a / "epoch_01.keras", b"AAAA")
    lake.write_bytes(on_a / "epoch_02.keras", b"xx")
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "b"))
    on_b = lake.artifact_dir(root, *folder)
    assert on_b != on_a and lake.stored_artifact(root, str(on_a)) == on_b
    objects.pull(on_b)
    assert (on_b / "epoch_01.keras").read_bytes() == b"AAAA"
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "a"))
    lake.write_bytes(on_a / "epoch_01.keras", b"BBBB")  # retrained: same size, new bytes
    objects.filesystem().rm_file(objects.key(root.joinpath(*folder, "epoch_02.keras")))
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "b"))
    objects.pull(on_b, exact=True)
    assert (on_b / "epoch_01.keras").read_bytes() == b"BBBB" and not (on_b / "epoch_02.keras").exists()
    assert sorted(p.name for p in on_b.iterdir() if not p.name.startswith(".")) == ["epoch_01.keras"]
    assert lake.stored_artifact(tmp_path / "local-lake", str(on_a)) == on_a  # a local lake's paths stay as they are


@pytest.mark.parametrize("where", ["bucket", "mirror", "local"])
def test_documents_that_many_writers_add_to_keep_every_entry(s3_root, tmp_path, monkeypatch, where):
    """precision.json-like documents updated by several writers at once (threads here, machines in a cluster):
    read-merge-write under a lock locally, conditional PUTs on object storage; no writer's entry is dropped."""
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "cache"))
    path = {"bucket": lake.as_root(s3_root) / "models" / "doc.json",
            "mirror": lake.artifact_dir(s3_root, "models") / "doc.json",
            "local": tmp_path / "models" / "doc.json"}[where]
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            lake.update_json(path, lambda doc: doc | {f"k{i}": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert lake.read_json(path) == {f"k{i}": i for i in range(8)}
    if where == "mirror":  # the bucket holds the same document the local mirror does
        assert lake.read_json(objects.remote_of(path)) == {f"k{i}": i for i in range(8)}


def test_a_vision_model_trains_on_another_machine_than_its_dataset(s3_root, tmp_path, monkeypatch):
    """With the lake on S3 the vision graphs run across machines: one machine builds the MNIST dataset (tfds's
    files, uploaded), another with an empty disk trains LeNet-5 on it (pulled), and a third finds the trained
    checkpoint in the bucket and trains nothing."""
    import dagster as dg

    from cnn_pipelines.vision.datasets.assets import dataset_asset
    from cnn_pipelines.vision.datasets.catalog import available_datasets
    from cnn_pipelines.vision.models.assets import model_asset
    from cnn_pipelines.vision.models.catalog import model_specs
    from cnn_pipelines.vision.settings import VisionSettings
    from cnn_pipelines_tests.vision.conftest import refuse_downloads
    from cnn_pipelines_tests.vision.test_vision_assets import materializations, offline_files

    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "catalogs"))  # not $DAGSTER_HOME's
    settings = VisionSettings(online=False, lake_root=lake.as_root(s3_root), fashion_mnist_dir=tmp_path / "fmnist")
    refuse_downloads(monkeypatch)
    offline_files(settings, tmp_path, monkeypatch)
    datasets = available_datasets(settings)
    [lenet] = [m for m in model_specs(datasets, online=False) if m.name == "lenet5_mnist"]
    dataset, model = dataset_asset(datasets["mnist"], settings), model_asset(lenet, datasets["mnist"], settings)
    config = {"ops": {"lenet5_mnist": {"config": {"epochs": 1, "train_limit": 200}}}}
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "machine-a"))
    assert dg.materialize([dataset]).success
    assert any(lake.as_root(s3_root).joinpath("datasets").rglob("*.tfrecord*"))  # the dataset is in the bucket
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "machine-b"))
    trained = materializations(dg.materialize([model], run_config=config))["lenet5_mnist"]
    assert trained["epochs_run"].value == 1
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "machine-c"))
    again = materializations(dg.materialize([model], run_config=config))["lenet5_mnist"]
    assert "nothing retrained" in again["summary"].value
    assert again["test_accuracy_pct"].value == trained["test_accuracy_pct"].value


def test_a_mirrored_folder_uploads_finished_files_only_descriptions_last(s3_root, tmp_path, monkeypatch):
    """push_tree sends what a library finished writing and nothing in progress (downloads, tfds's incomplete
    folders, temp and hidden files); JSON descriptions go after the data they describe; a second call sends
    only what changed."""
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "cache"))
    d = lake.artifact_dir(s3_root, "datasets")
    files = {"mnist/3.0.1/dataset_info.json": b"{}", "mnist/3.0.1/mnist-train.tfrecord-00000": b"x" * 10,
             "downloads/archive.zip": b"z", "mnist/3.0.1.incompleteABC/part": b"p", "mnist/3.0.1/.x.tmp": b"t",
             "mnist/3.0.1/shard.tmp.parquet": b"t"}
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    sent = [p.relative_to(d).as_posix() for p in objects.push_tree(d)]
    assert sent == ["mnist/3.0.1/mnist-train.tfrecord-00000", "mnist/3.0.1/dataset_info.json"]
    assert objects.push_tree(d) == []
    (d / "mnist/3.0.1/dataset_info.json").write_text('{"v": 2}')
    assert [p.name for p in objects.push_tree(d)] == ["dataset_info.json"]
    monkeypatch.setenv("CNN_LAKE_CACHE", str(tmp_path / "other-machine"))
    other = lake.artifact_dir(s3_root, "datasets")
    objects.pull(other)
    assert sorted(p.relative_to(other).as_posix() for p in other.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        == ["mnist/3.0.1/dataset_info.json", "mnist/3.0.1/mnist-train.tfrecord-00000"]
