"""Nightly production: the schedule's run requests, and signals for day D built from nothing after D."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.features.assets import forward_returns, indicator_panel
from cnn_pipelines.definitions import defs
from cnn_pipelines.trading.production.assets import daily_signals, nightly_partition, nightly_schedule, production_model
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
from cnn_pipelines.trading.features.panel import forward_returns_table
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.production.training import production_fold, rank_signals, signal_problems
from cnn_pipelines.trading.settings import FeatureSettings
from cnn_pipelines.trading.research.walkforward import realization_dates, split_masks


XNYS = trading_calendar("XNYS")

def test_schedule_requests_the_newest_complete_weekday():
    cases = {
        dt.datetime(2025, 12, 1, 2, 0): "2025-11-28",   # Monday night run -> Friday
        dt.datetime(2025, 11, 25, 2, 0): "2025-11-24",  # Tuesday -> Monday
        dt.datetime(2025, 12, 3, 2, 0): "2025-12-02",
    }
    for when, key in cases.items():
        assert nightly_partition(when) == key
        ctx = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
        req = nightly_schedule.evaluate_tick(ctx).run_requests[0]
        assert req.partition_key == key and req.run_key == f"nightly-{key}"
    assert nightly_schedule.cron_schedule == "0 2 * * 1-5"
    assert nightly_schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_production_inputs_end_at_the_partition_date():
    for asset in (production_model, daily_signals):
        for key in asset.dependency_keys:
            if key.path[-1] in ("raw_prices", "indicator_panel"):
                mapping = asset.get_partition_mapping(key)
                end = getattr(mapping, "end_offset", 0)
                assert end == 0, f"{asset.key.to_user_string()} reads {key.to_user_string()} beyond its date"
    # the features themselves look back only (their look-ahead-free proof is in test_features.py)
    assert indicator_panel.get_partition_mapping(dg.AssetKey("raw_prices")).end_offset == 0
    # forward_returns looks ahead by design, which is why production recomputes labels from prices <= D
    assert forward_returns.get_partition_mapping(dg.AssetKey("raw_prices")).end_offset > 0
    assert dg.AssetKey("forward_returns") not in production_model.dependency_keys


def test_production_labels_are_realized_by_the_partition_date():
    s = FeatureSettings(universe_size=20, universe_window=20, universe_min_obs=18, factor_formation=20)
    prices = SyntheticMarket(MarketConfig(seed=3, n_tickers=20, inception="2015-01-01")).prices("2015-01-01", "2016-06-30")
    day = "2016-03-15"
    upto = prices[pd.to_datetime(prices["date"]) <= pd.Timestamp(day)]
    targets = forward_returns_table(upto, s, "2015-06-01", day)
    assert targets[pd.to_datetime(targets["date"]) == pd.Timestamp(day)]["fwd_1d"].isna().all()
    fold = production_fold(day, train_months=9, val_months=2, calendar=trading_calendar("synthetic"))
    days = pd.DatetimeIndex(sorted(pd.to_datetime(targets["date"]).unique()))
    train, val = split_masks(targets["date"], days, fold, horizon=1)
    real = realization_dates(targets["date"], days, 1)
    assert (train | val).sum() > 1000
    assert (real[train | val] <= np.datetime64(pd.Timestamp(day))).all()
    # the same labels whether or not later prices exist
    full = forward_returns_table(prices, s, "2015-06-01", day)
    used = targets.loc[train | val].reset_index(drop=True)
    again = full.merge(used[["date", "ticker"]], on=["date", "ticker"])
    np.testing.assert_array_equal(used["fwd_1d"].to_numpy(), again["fwd_1d"].to_numpy())


def test_rank_signals_flags_top_and_bottom_k():
    rows = pd.DataFrame({"date": [dt.date(2026, 11, 25)] * 6, "ticker": list("ABCDEF")})
    out = rank_signals(rows, np.array([0.1, 0.5, -0.2, 0.3, -0.9, 0.0]), k=2, next_day=dt.date(2026, 11, 26))
    assert out["ticker"].tolist() == ["B", "D", "A", "F", "C", "E"]
    assert out["side"].tolist() == ["long", "long", "none", "none", "short", "short"]
    assert (out["trade_date"] == dt.date(2026, 11, 26)).all()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), k=st.integers(1, 12), seed=st.integers(0, 10_000), ties=st.booleans())
def test_ranked_signals_pass_their_checks_for_any_universe_and_k(n, k, seed, ties):
    """The checks' invariants hold for whatever rank_signals makes (any size, any K, tied predictions)."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({"date": [dt.date(2024, 7, 3)] * n, "ticker": [f"T{i:03d}" for i in rng.permutation(n)]})
    pred = rng.integers(0, 3, n).astype(float) if ties else rng.normal(size=n)
    out = rank_signals(rows, pred, k, dt.date(2024, 7, 5))
    assert signal_problems(out, rows, k, "2024-07-03", XNYS) == {
        "one_row_per_member": [], "balanced_book": [], "next_session": []}


def test_signal_checks_name_what_is_wrong():
    rows = pd.DataFrame({"date": [dt.date(2024, 7, 3)] * 6, "ticker": list("ABCDEF")})
    good = rank_signals(rows, np.array([0.1, 0.5, -0.2, 0.3, -0.9, 0.0]), k=2, next_day=dt.date(2024, 7, 5))

    def problems(signals, check):
        return signal_problems(signals, rows, 2, "2024-07-03", XNYS)[check]

    doubled = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    assert "1 name(s) with more than one signal: B" in problems(doubled, "one_row_per_member")
    assert "1 name(s) with features but no signal: C" in problems(good[good["ticker"] != "C"], "one_row_per_member")
    flipped = good.assign(side=good["side"].replace({"long": "short", "short": "long"}))
    assert "long names predicted below a short one: C, E" in problems(flipped, "balanced_book")
    lopsided = good.assign(side=["long", "long", "long", "none", "short", "short"])
    assert "3 long and 2 short, expected 2 each of 6 names" in problems(lopsided, "balanced_book")
    gap = good.assign(prediction=good["prediction"].where(good["ticker"] != "F"))
    assert "1 prediction(s) not finite: F" in problems(gap, "balanced_book")
    # the trade date is checked against the calendar, not against the date the signals were given
    assert problems(good.assign(trade_date=dt.date(2024, 7, 4)), "next_session") == [
        "trade date 2024-07-04 for 2024-07-03: not a session"]  # Independence Day (BDay(1) gave it)
    assert problems(good.assign(trade_date=dt.date(2024, 7, 8)), "next_session") == [
        "trade date 2024-07-08 for 2024-07-03: sessions before it: 2024-07-05"]
    assert problems(good.assign(trade_date=dt.date(2024, 7, 3)), "next_session") == [
        "trade date 2024-07-03 for 2024-07-03: not after the day"]


def test_the_materialized_signals_trade_on_the_next_session_across_a_holiday(monkeypatch):
    """Issue 29: nothing read daily_signals itself, so reverting its trade date to BDay(1) passed every test.
    Materialized for Wednesday 2024-07-03, before the market's 4 July holiday, its signals trade on Friday
    2024-07-05, in the table and in the metadata."""
    import cnn_pipelines.trading.production.assets as production

    monkeypatch.setattr("cnn_pipelines.trading.research.cnn.predict_ensemble",
                        lambda ckpt, ensemble, x: np.linspace(1.0, -1.0, len(x)))
    monkeypatch.setattr(production, "to_images", lambda rows, layout: np.zeros((len(rows), 15, 15, 1), np.float32))
    monkeypatch.setattr(production.ImageLayout, "from_json", staticmethod(lambda doc: None))
    rows = pd.DataFrame({"date": [dt.date(2024, 7, 3)] * 6, "ticker": list("ABCDEF")})
    upstream = {"production_model": {"checkpoints": "unused", "ensemble": [1]}, "indicator_panel": rows}
    stored = {}

    class Lake(dg.IOManager):
        def load_input(self, context):
            return upstream[context.asset_key.path[-1]]

        def handle_output(self, context, obj):
            stored[context.asset_key.path[-1]] = obj

    result = dg.materialize([production_model.to_source_asset(), indicator_panel.to_source_asset(), daily_signals],
                            partition_key="2024-07-03", resources={"lake": Lake()}, selection=[daily_signals])
    signals = stored["daily_signals"]
    assert (signals["trade_date"] == dt.date(2024, 7, 5)).all() and sorted(signals["ticker"]) == list("ABCDEF")
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["trade_date"].value == "2024-07-05"
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"one_row_per_member": True, "balanced_book": True, "next_session": True}
