"""Dagster's event history stays lean: a range run records each partition's own numbers, and the run's
pictures once, so a nightly schedule or a 520-partition `make run` does not grow the instance by the megabyte."""

from pathlib import Path

import dagster as dg
import pandas as pd

from cnn_pipelines.trading.features.assets import SETTINGS, forward_returns, indicator_panel, universe
from cnn_pipelines.trading.prices.assets import raw_prices
from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

from cnn_pipelines_tests.conftest import lake_resources, run_range


def _storage_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())  # history/, storage/, schedules/


def test_range_run_history_grows_by_kilobytes_per_partition_not_by_pictures(tmp_path):
    res = lake_resources(tmp_path / "lake", SyntheticPriceSource(n_tickers=12, seed=5))
    start, end = "2014-03-03", "2014-04-25"
    first = pd.bdate_range(end=start, periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    assert run_range([raw_prices], first, "2014-05-02", res).success  # prices into a throwaway instance
    home = tmp_path / "home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        before = _storage_bytes(home)
        result = run_range([raw_prices.to_source_asset(), universe, indicator_panel, forward_returns],
                           start, end, res, instance,
                           selection=dg.AssetSelection.assets(universe, indicator_panel, forward_returns))
        assert result.success
        mats = [e.materialization for e in result.get_asset_materialization_events()]
        grown = _storage_bytes(home) - before
    partitions = len(pd.bdate_range(start, end))
    assert len(mats) == 3 * partitions
    for asset in ("universe", "indicator_panel", "forward_returns"):
        with_pictures = [m.partition for m in mats if m.asset_key.path[-1] == asset
                         and any("data:image/" in str(v.value) for v in m.metadata.values())]
        assert with_pictures in ([], [end]), f"{asset}: pictures on {with_pictures}"
    # Measured: ~12 KB per materialization here (two ~2 KB copies of each event, its planned event, SQLite pages
    # and the run's own database amortized over 40 partitions); ~43 KB when the run's pictures and tables were
    # copied onto every partition.
    assert grown / len(mats) < 20_000, f"{grown:,} bytes of history for {len(mats)} materializations"
