"""The feature assets in Dagster: one range run over look-back windows, queryable through DuckDB."""

import dagster as dg
import duckdb
import pandas as pd
import pytest

from cnn_pipelines import lake
from cnn_pipelines.assets.features import SETTINGS, forward_returns, indicator_panel, universe
from cnn_pipelines.assets.prices import raw_prices
from cnn_pipelines.resources import SyntheticPriceSource

from .conftest import lake_resources, run_range


@pytest.fixture(scope="module")
def lake_with_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    res = lake_resources(root, SyntheticPriceSource(n_tickers=12, seed=5))
    first = pd.bdate_range(end="2014-03-03", periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    assert run_range([raw_prices], first, "2014-04-04", res).success
    instance = dg.DagsterInstance.ephemeral()
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
    _, result, _ = lake_with_features
    meta = {m.asset_key.path[-1]: m.metadata for m in
            (e.materialization for e in result.get_asset_materialization_events())}
    panel = meta["indicator_panel"]
    assert panel["feature_columns"].value == 300 and panel["rows"].value > 0
    assert "RSI" in panel["nan_share_by_family"].value
    assert "data:image/png;base64," in panel["family_correlation"].value
    assert meta["universe"]["mean_daily_turnover"].value >= 0
    assert meta["forward_returns"]["fwd_1d_realized"].value > 0


def test_duckdb_exposes_features_and_targets(lake_with_features):
    root, _, _ = lake_with_features
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        n_panel, n_dates = con.execute("select count(*), count(distinct date) from indicator_panel").fetchone()
        cols = [r[0] for r in con.execute("describe indicator_panel").fetchall()]
        joined = con.execute("""select count(*) from indicator_panel p join forward_returns f using (date, ticker)
                                where f.fwd_1d_ok""").fetchone()[0]
        types = {r[0]: r[1] for r in con.execute("describe indicator_panel").fetchall()}
    assert n_dates == 15 and n_panel > 100 and len(cols) == 302
    assert types["06_RSI"] == "FLOAT" and types["date"] == "DATE"
    assert joined > 0.9 * n_panel
