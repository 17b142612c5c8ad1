"""The feature assets in Dagster: one range run over look-back windows, queryable through DuckDB."""

from dataclasses import replace

import dagster as dg
import duckdb
import pandas as pd
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines.trading.features import assets as feature_assets
from cnn_pipelines.trading.features.assets import SETTINGS, forward_returns, indicator_panel, universe
from cnn_pipelines.trading.features.panel import indicator_panel_table
from cnn_pipelines.trading.prices.adjustments import adjust_as_of
from cnn_pipelines.trading.prices.assets import raw_prices
from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

from cnn_pipelines_tests.conftest import lake_resources, run_range


@pytest.fixture(scope="module")
def lake_with_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    res = lake_resources(root, SyntheticPriceSource(n_tickers=12, seed=5))
    first = pd.bdate_range(end="2014-03-03", periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    assert run_range([raw_prices], first, "2014-04-04", res).success
    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as mp:  # the panel of these 12 names is computed in shards of 5
        mp.setattr(feature_assets, "SETTINGS", replace(SETTINGS, shard_tickers=5))
        result = run_range([raw_prices.to_source_asset(), universe, indicator_panel, forward_returns],
                           "2014-03-03", "2014-03-21", res, instance,
                           selection=dg.AssetSelection.assets(universe, indicator_panel, forward_returns))
    return root, result, instance


def test_one_run_materializes_every_partition(lake_with_features):
    root, result, instance = lake_with_features
    assert result.success and len(instance.get_runs()) == 1
    keys = pd.bdate_range("2014-03-03", "2014-03-21").strftime("%Y-%m-%d").tolist()
    for table in ("universe", "indicator_panel", "forward_returns"):
        assert lake.materialized_keys(root, table) == keys


def test_metadata_reports_coverage_correlations_and_turnover(lake_with_features):
    root, result, _ = lake_with_features
    # the run-level numbers and pictures are on each asset's newest partition (the last event)
    meta = {m.asset_key.path[-1]: m.metadata for m in
            (e.materialization for e in result.get_asset_materialization_events()) if m.partition == "2014-03-21"}
    panel = meta["indicator_panel"]
    assert panel["feature_columns"].value == 300 and panel["run_rows"].value > panel["rows"].value > 0
    assert panel["lake_covers"].value == "2014-03-03 .. 2014-03-21 (15 weekday partitions)"
    shown = panel["missing_by_family"]  # a table where a family has gaps, else one line (not 20 rows of 0)
    if isinstance(shown, dg.TableMetadataValue):
        missing = {r.data["family"]: r.data["missing %"] for r in shown.records}
        assert "RSI" in missing and all(0 <= v <= 100 for v in missing.values()) and max(missing.values()) > 0
    else:
        assert shown.value == "none: every family has a value in every row"
    assert "data:image/png;base64," in panel["family_correlation"].value
    from cnn_pipelines.trading.features.reports import universe_turnover

    stored = lake.read_partitions(root, "universe", pd.bdate_range("2014-03-03", "2014-03-21").strftime("%Y-%m-%d").tolist())
    assert meta["universe"]["turnover_pct_per_day"].value == round(100 * universe_turnover(stored).mean(), 1)
    assert meta["forward_returns"]["fwd_1d_realized"].value > 0
    assert meta["forward_returns"]["fwd_open_1d_realized"].value > 0
    fr = meta["forward_returns"]  # a label not yet realized is explained, not a bare 0
    short = {k[:-len("_realized")]: fr[k].value for k in fr if k.endswith("_realized")}
    pending = fr["labels_pending"].value
    if all(n == fr["run_rows"].value for n in short.values()):
        assert pending.startswith("none")
    else:
        assert "fill in as those bars land" in pending and all(
            (f"{c} {fr['run_rows'].value - n}" in pending) == (n < fr["run_rows"].value) for c, n in short.items())


def test_duckdb_exposes_features_and_targets(lake_with_features):
    root, _, _ = lake_with_features
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        n_panel, n_dates = con.execute("select count(*), count(distinct date) from indicator_panel").fetchone()
        cols = [r[0] for r in con.execute("describe indicator_panel").fetchall()]
        joined = con.execute("""select count(*) from indicator_panel p join forward_returns f using (date, ticker)
                                where f.fwd_open_1d_ok""").fetchone()[0]
        types = {r[0]: r[1] for r in con.execute("describe indicator_panel").fetchall()}
    assert n_dates == 15 and n_panel > 100 and len(cols) == 302
    assert types["06_RSI"] == "FLOAT" and types["date"] == "DATE"
    assert joined > 0.9 * n_panel


def test_labels_past_the_lake_are_unrealized_and_fill_in_when_their_bars_land(tmp_path):
    # The README's CLI case: the trading job over a range on a lake whose raw_prices end with the range.
    root = tmp_path / "lake"
    res = lake_resources(root, SyntheticPriceSource(n_tickers=10, seed=6))
    end = "2014-03-21"
    first = pd.bdate_range(end="2014-03-17", periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    instance = dg.DagsterInstance.ephemeral()
    assert run_range([raw_prices], first, end, res, instance).success
    features = [raw_prices.to_source_asset(), universe, indicator_panel, forward_returns]
    assert run_range(features, "2014-03-17", end, res, instance,
                     selection=dg.AssetSelection.assets(universe, indicator_panel, forward_returns)).success
    labels = lake.read_partitions(root, "forward_returns", ["2014-03-20", end])
    assert labels.loc[labels["date"].astype(str) == end, "fwd_1d"].isna().all()  # not yet realized: NaN
    assert labels.loc[labels["date"].astype(str) == "2014-03-20", "fwd_open_1d"].isna().all()
    assert labels.loc[labels["date"].astype(str) == "2014-03-20", "fwd_1d"].notna().all()

    defs = dg.Definitions(assets=[raw_prices, universe, indicator_panel, forward_returns], resources=res)
    sel = dg.AssetSelection.assets(forward_returns)
    first_tick = dg.evaluate_automation_conditions(defs, instance, asset_selection=sel,
                                                   evaluation_time=pd.Timestamp("2014-03-25 03:00").to_pydatetime())
    assert first_tick.total_requested == 0  # nothing landed since the run that wrote them
    assert run_range([raw_prices], "2014-03-24", "2014-03-24", res, instance).success  # Monday's bars land
    tick = dg.evaluate_automation_conditions(defs, instance, asset_selection=sel, cursor=first_tick.cursor,
                                             evaluation_time=pd.Timestamp("2014-03-25 03:05").to_pydatetime())
    requested = sorted(tick.get_requested_partitions(forward_returns.key))
    assert {"2014-03-20", "2014-03-21"} <= set(requested) and all(k <= "2014-03-21" for k in requested)
    assert run_range(features, requested[0], requested[-1], res, instance,
                     selection=dg.AssetSelection.assets(forward_returns)).success
    filled = lake.read_partitions(root, "forward_returns", [end])
    assert filled["fwd_1d"].notna().all() and filled["fwd_open_1d"].isna().all()  # open of 03-25 not in yet


def test_the_panel_stored_shard_by_shard_is_the_whole_panel(lake_with_features):
    """Issue 30: the asset writes its panel shard by shard through a spool; the lake holds exactly the panel
    computed on all names at once from the same price window, and the UI says how it was sharded."""
    root, result, _ = lake_with_features
    keys = pd.bdate_range(end="2014-03-21", periods=SETTINGS.price_lookback + 15).strftime("%Y-%m-%d").tolist()
    window = adjust_as_of(lake.read_partitions(root, "raw_prices", keys))
    whole = indicator_panel_table(window, SETTINGS, "2014-03-03", "2014-03-21")
    stored = lake.read_partitions(root, "indicator_panel", keys[-15:])
    names = whole["ticker"].nunique()
    assert names > 5  # so more than one shard
    pd.testing.assert_frame_equal(stored.astype({"ticker": "string"}), whole, check_exact=True)
    meta = [m.metadata for m in (e.materialization for e in result.get_asset_materialization_events())
            if m.partition == "2014-03-21" and m.asset_key.path[-1] == "indicator_panel"][0]
    assert meta["computed_in"].value.startswith(f"{-(-names // 5)} shard(s) of at most 5 tickers")


def test_a_one_day_run_still_says_which_range_the_lake_covers(lake_with_features):
    """Issue 31: after make run, the nightly run re-materialized the newest day, and the asset's overview
    showed that one day (52 rows, a turnover of 0): the range built before was reachable only through Events.
    Every run now names what the lake holds of the table, its own partitions included."""
    root, _, _ = lake_with_features
    res = lake_resources(root, SyntheticPriceSource(n_tickers=12, seed=5))
    result = dg.materialize([raw_prices.to_source_asset(), universe], partition_key="2014-03-24", resources=res,
                            selection=[universe])
    meta = result.asset_materializations_for_node("universe")[0].metadata
    assert meta["lake_covers"].value == "2014-03-03 .. 2014-03-24 (16 weekday partitions)"
    assert meta["rows"].value > 0


def test_the_universe_says_which_names_it_kept_out_for_not_trading(tmp_path):
    """A file whose volume is 0 (a suspended name's repeated close, or a vendor without volumes) is kept out of
    the universe however few names there are, and the asset names it rather than leaving an empty seat."""
    import exchange_calendars as xc

    from cnn_pipelines.trading.prices.resources import FilePriceSource

    days = xc.get_calendar("XNYS").sessions_in_range("2020-01-02", "2020-06-30")
    frames = []
    for k, t in enumerate(["AAA", "BBB", "CCC", "IDLE"]):
        close = 10.0 + k + 0.01 * pd.Series(range(len(days))).to_numpy()
        frames.append(pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "ticker": t, "open": close, "high": close + 0.1,
                                    "low": close - 0.1, "close": close, "volume": 0.0 if t == "IDLE" else 1e6}))
    files = tmp_path / "files"
    files.mkdir()
    pd.concat(frames).to_csv(files / "prices.csv", index=False)
    res = lake_resources(tmp_path / "lake", FilePriceSource(path=str(files)))
    assert run_range([raw_prices], "2020-01-02", "2020-06-30", res).success
    result = dg.materialize([raw_prices.to_source_asset(), universe], partition_key="2020-06-30", resources=res,
                            selection=[universe])
    meta = result.asset_materializations_for_node("universe")[0].metadata
    assert meta["untraded_tickers"].value == "IDLE (1 d)"
    stored = lake.read_partitions(tmp_path / "lake", "universe", ["2020-06-30"])
    assert sorted(stored["ticker"]) == ["AAA", "BBB", "CCC"]
    assert meta["mean_members_per_day"].value == 3.0
