"""Dagster's event history stays lean: a range run records each partition's own numbers, the run's pictures
once, each event once (the project's dagster.yaml storage), and its checks planned once, so a nightly schedule or
a 520-partition `make run` does not grow the instance by the megabyte."""

import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pandas as pd

from cnn_pipelines.trading.features.assets import SETTINGS, forward_returns, indicator_panel, universe
from cnn_pipelines.trading.prices.assets import RAW_PRICES_CHECKS, raw_prices
from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

from cnn_pipelines_tests.conftest import REPO_ROOT, lake_resources, run_range


def _storage_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())  # history/, storage/, schedules/


def test_range_run_history_grows_by_kilobytes_per_partition_not_by_pictures(tmp_path):
    res = lake_resources(tmp_path / "lake", SyntheticPriceSource(n_tickers=12, seed=5))
    start, end = "2014-03-03", "2014-04-25"
    first = pd.bdate_range(end=start, periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert run_range([raw_prices], first, "2014-05-02", res, instance).success  # with its checks
        before = _storage_bytes(home)
        result = run_range([raw_prices.to_source_asset(), universe, indicator_panel, forward_returns],
                           start, end, res, instance,
                           selection=dg.AssetSelection.assets(universe, indicator_panel, forward_returns))
        assert result.success
        mats = [e.materialization for e in result.get_asset_materialization_events()]
        grown = _storage_bytes(home) - before
        outputs = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
        # a one-partition run (the nightly schedule's) completes its checks too
        one = dg.materialize([raw_prices], instance=instance, partition_key=end, resources=res)
        assert one.success
    # one database, each event once; a range run's checks planned (and completed) once, not once per partition
    assert not (home / "history" / "runs").exists()
    with sqlite3.connect(home / "history" / "events" / "event_log.db") as con:
        checks = con.execute("select check_name, execution_status, partition from asset_check_executions").fetchall()
    assert len(checks) == 2 * len(RAW_PRICES_CHECKS) and all(status != "PLANNED" and part is None for _, status, part in checks), checks
    # metadata (and its pictures) is stored with the materialization, not again with the step's output
    assert outputs and all(not e.event_specific_data.metadata for e in outputs)
    partitions = len(pd.bdate_range(start, end))
    assert len(mats) == 3 * partitions
    for asset in ("universe", "indicator_panel", "forward_returns"):
        with_pictures = [m.partition for m in mats if m.asset_key.path[-1] == asset
                         and any("data:image/" in str(v.value) for v in m.metadata.values())]
        assert with_pictures in ([], [end]), f"{asset}: pictures on {with_pictures}"
    # Measured: ~4.2 KB per materialization here (a ~1.7 KB event and its index rows, plus the run's other events
    # and its pictures amortized over 40 partitions); ~6.4 KB when each partition had its own planned event and
    # the asset-key row a copy of the latest materialization, ~12 KB with Dagster's default SQLite storage (two
    # copies of each event, a planned check row per partition), ~43 KB when every partition carried the run's
    # pictures and tables.
    assert grown / len(mats) < 5_500, f"{grown:,} bytes of history for {len(mats)} materializations"
