"""Feature tables: point-in-time universe and panel, partition invariance, targets, factor CSVs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.features.factors import read_fama_french_csv
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
from cnn_pipelines.trading.features.panel import feature_columns, forward_returns_table, indicator_panel_table, universe_table
from cnn_pipelines.trading.settings import FeatureSettings

SMALL = FeatureSettings(universe_size=10, universe_window=20, universe_min_obs=18, factor_formation=20)
MARKET = MarketConfig(seed=21, n_tickers=16, inception="2015-01-01", late_listing_share=0.4, delisting_share=0.3,
                      listing_spread_days=300)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return SyntheticMarket(MARKET).prices("2015-01-01", "2017-03-31")


def since(prices: pd.DataFrame, start) -> pd.DataFrame:
    return prices[pd.to_datetime(prices["date"]) >= pd.Timestamp(start)]


def until(prices: pd.DataFrame, end) -> pd.DataFrame:
    return prices[pd.to_datetime(prices["date"]) <= pd.Timestamp(end)]


def lookback_start(day: str, s: FeatureSettings) -> pd.Timestamp:
    """The first weekday partition an asset run for ``day`` loads (its partition mapping's start_offset)."""
    return pd.bdate_range(end=day, periods=s.price_lookback + 1)[0]


def test_panel_has_300_float32_columns_named_by_period_and_family(prices):
    panel = indicator_panel_table(prices, SMALL, "2016-06-01", "2016-06-30")
    cols = feature_columns(SMALL)
    assert len(cols) == 300 and len(set(cols)) == 300
    assert list(panel.columns) == ["date", "ticker", *cols]
    assert cols[0] == "06_RSI" and cols[14] == "20_RSI" and cols[-1] == "85_BETA_LVOL"
    assert (panel[cols].dtypes == "float32").all()
    assert not panel.duplicated(["date", "ticker"]).any()
    assert panel[cols].notna().mean().mean() > 0.95


def test_changing_prices_after_d_changes_nothing_at_or_before_d(prices):
    d = pd.Timestamp("2016-09-15")
    rng = np.random.default_rng(0)
    changed = prices.copy()
    later = pd.to_datetime(changed["date"]) > d
    scale = np.exp(rng.normal(0, 0.2, later.sum()))
    for col in ("open", "high", "low", "close"):
        changed.loc[later, col] *= scale
    changed.loc[later, "volume"] *= np.exp(rng.normal(0, 1.0, later.sum()))
    changed = changed.drop(index=changed[later].sample(frac=0.2, random_state=1).index)  # and delete bars

    def upto(df):
        return df[pd.to_datetime(df["date"]) <= d].reset_index(drop=True)

    for fn in (indicator_panel_table, universe_table):
        a = fn(prices, SMALL, "2016-06-01", "2016-12-30")
        b = fn(changed, SMALL, "2016-06-01", "2016-12-30")
        pd.testing.assert_frame_equal(upto(a), upto(b))
        assert not a[pd.to_datetime(a["date"]) > d].reset_index(drop=True).equals(
            b[pd.to_datetime(b["date"]) > d].reset_index(drop=True))  # the change is visible after d


def test_universe_uses_volume_up_to_the_day_before(prices):
    day = pd.Timestamp("2016-05-10")
    base = universe_table(prices, SMALL, day, day + pd.Timedelta(days=1))
    members = set(base[pd.to_datetime(base["date"]) == day]["ticker"])
    outsider = sorted(set(prices["ticker"]) - members)[0]
    boosted = prices.copy()
    hit = (pd.to_datetime(boosted["date"]) == day) & (boosted["ticker"] == outsider)
    boosted.loc[hit, "volume"] *= 1e6  # a huge volume ON the day cannot change that day's membership
    after = universe_table(boosted, SMALL, day, day + pd.Timedelta(days=1))
    pd.testing.assert_frame_equal(after[pd.to_datetime(after["date"]) == day].reset_index(drop=True),
                                  base[pd.to_datetime(base["date"]) == day].reset_index(drop=True))
    assert len(members) == SMALL.universe_size
    ranks = base[pd.to_datetime(base["date"]) == day].sort_values("rank")
    assert ranks["median_dollar_volume"].is_monotonic_decreasing and list(ranks["rank"]) == list(range(1, 11))


# Recursive indicators (EMA/Wilder smoothing) depend on where their history starts; after the
# price_lookback warm-up (>= 300 weekdays) that dependence is below this bound. Everything else is exact.
INVARIANCE_RTOL = 1e-5


def assert_invariant(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a[["date", "ticker"]].reset_index(drop=True).equals(b[["date", "ticker"]].reset_index(drop=True))
    x = a.drop(columns=["date", "ticker"]).to_numpy(dtype=float)
    y = b.drop(columns=["date", "ticker"]).to_numpy(dtype=float)
    assert (np.isnan(x) == np.isnan(y)).all()
    ok = ~np.isnan(x)
    np.testing.assert_allclose(x[ok], y[ok], rtol=INVARIANCE_RTOL, atol=INVARIANCE_RTOL)


def test_partition_invariance_range_day_by_day_and_full_history(prices):
    start, end = "2017-01-09", "2017-01-20"
    full = indicator_panel_table(prices, SMALL, start, end)
    ranged = indicator_panel_table(since(until(prices, end), lookback_start(start, SMALL)), SMALL, start, end)
    assert_invariant(ranged, full)
    days = [indicator_panel_table(since(until(prices, d), lookback_start(d, SMALL)), SMALL, d, d)
            for d in pd.bdate_range(start, end).strftime("%Y-%m-%d")]
    assert_invariant(pd.concat(days, ignore_index=True), full)
    for fn in (universe_table, forward_returns_table):
        a = fn(prices, SMALL, start, end)
        b = fn(since(prices, lookback_start(start, SMALL)), SMALL, start, end)
        pd.testing.assert_frame_equal(a, b)


def test_forward_returns_deciles_and_jump_exclusion():
    dates = pd.bdate_range("2021-01-04", periods=40)
    rows = []
    for i in range(20):
        close = 10 + i + 0.1 * np.arange(40) * (i % 3)
        if i == 7:
            close = close.copy()
            close[30] *= 1.8  # an implausible one-day jump (+80%) and back
        for d, c in zip(dates, close):
            rows.append((d.date(), f"X{i:02d}", c, c * 1.01, c * 0.99, c, 1e6 * (20 - i)))
    prices = pd.DataFrame(rows, columns=["date", "ticker", "open", "high", "low", "close", "volume"])
    s = FeatureSettings(universe_size=20, universe_window=5, universe_min_obs=5)
    out = forward_returns_table(prices, s, dates[10], dates[-1])
    x = out[out["ticker"] == "X02"].set_index("date")
    c = prices[prices["ticker"] == "X02"].set_index("date")["close"]
    d0 = dates[12].date()
    assert x.loc[d0, "fwd_1d"] == pytest.approx(c.iloc[13] / c.iloc[12] - 1, rel=1e-6)
    assert x.loc[d0, "fwd_5d"] == pytest.approx(c.iloc[17] / c.iloc[12] - 1, rel=1e-6)
    last = out[out["date"] == dates[-1].date()]
    assert last["fwd_1d"].isna().all() and (~last["fwd_1d_ok"]).all() and (last["fwd_1d_decile"] == 0).all()
    j = out[out["ticker"] == "X07"].set_index("date")
    for k in (29, 30):  # the jump up (29 -> 30) and back (30 -> 31)
        assert not j.loc[dates[k].date(), "fwd_1d_ok"] and j.loc[dates[k].date(), "fwd_1d_decile"] == 0
    assert not j.loc[dates[26].date(), "fwd_5d_ok"] and j.loc[dates[24].date(), "fwd_5d_ok"]
    day = out[(out["date"] == d0) & out["fwd_1d_ok"]]
    assert sorted(day["fwd_1d_decile"].unique()) == list(range(1, 11))
    assert day.groupby("fwd_1d_decile")["fwd_1d"].mean().is_monotonic_increasing


def test_fama_french_csv(tmp_path):
    path = tmp_path / "F-F_Research_Data_5_Factors_2x3_daily.CSV"
    path.write_text(
        "This file was created using the 202401 CRSP database.\n"
        "The Tbill return is the simple daily rate.\n\n"
        ",Mkt-RF,SMB,HML,RMW,CMA,RF\n"
        "20240102,  -0.71,  -0.37,   1.14,   0.12,   0.50,  0.021\n"
        "20240103,  -1.00,  -0.20,   0.20,   0.31,   0.10,  0.021\n\n"
        "Copyright 2024 Kenneth R. French\n")
    ff = read_fama_french_csv(path)
    assert list(ff.columns) == ["Mkt-RF", "SMB", "HML", "RMW", "CMA", "RF"]
    assert ff.loc["2024-01-02", "Mkt-RF"] == pytest.approx(-0.0071) and len(ff) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(",Mkt-RF,SMB,HML,RF\n20240102,1,2,3,0.01\n")
    with pytest.raises(ValueError, match=r"RMW.*CMA"):
        read_fama_french_csv(bad)


def test_the_universe_window_counts_sessions_not_weekdays():
    """Issue 29: universe and forward_returns read universe_window + 5 weekdays of prices, which on NYSE holds
    fewer sessions than the window (247 of 252 in the full preset), so their trailing medians and members
    differed from indicator_panel's (which reads far more history). Their input window now holds the whole
    window of sessions wherever it ends: each day's universe from that window equals the one from all history."""
    from dataclasses import replace

    from cnn_pipelines.trading.prices.calendar import trading_calendar

    s = replace(FeatureSettings(), calendar="XNYS", universe_size=6, universe_window=252, universe_min_obs=240)
    cal = trading_calendar("XNYS")
    sessions = cal.sessions("2016-01-04", "2019-12-31")
    rng = np.random.default_rng(3)
    names = [f"N{i}" for i in range(12)]
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(sessions), len(names))), axis=0))
    volume = rng.lognormal(10, 1.0, (len(sessions), len(names)))
    prices = pd.DataFrame({"date": np.repeat(sessions.date, len(names)), "ticker": np.tile(names, len(sessions)),
                           "open": close.ravel(), "high": close.ravel() * 1.01, "low": close.ravel() * 0.99,
                           "close": close.ravel(), "volume": volume.ravel()})
    assert s.universe_lookback > cal.weekdays_spanning(253) > s.universe_window + 5  # the old window: 257 weekdays
    days = cal.sessions("2019-01-02", "2019-12-31")[::15]
    whole = universe_table(prices, s, days[0].date(), days[-1].date()).set_index(["date", "ticker"])
    for day in days:
        first = pd.bdate_range(end=day, periods=s.universe_lookback + 1)[0]  # the partition mapping's start
        window = prices[(pd.to_datetime(prices["date"]) >= first) & (pd.to_datetime(prices["date"]) <= day)]
        alone = universe_table(window, s, day.date(), day.date()).set_index(["date", "ticker"])
        expected = whole.loc[whole.index.get_level_values("date") == day.date()]
        pd.testing.assert_frame_equal(alone, expected, check_names=False)


def _ff_csv(path, days: pd.DatetimeIndex, seed: int = 0) -> None:
    """A Ken French-style daily factor file (percent values) over ``days``."""
    rng = np.random.default_rng(seed)
    lines = ["Made for a test.", "", ",Mkt-RF,SMB,HML,RMW,CMA,RF"]
    lines += [f"{d:%Y%m%d}," + ",".join(f"{v:.4f}" for v in rng.normal(0, 1, 5)) + ",0.01" for d in days]
    path.write_text("\n".join(lines) + "\n\nCopyright\n")


def test_factor_betas_use_only_factors_published_by_the_day_and_missing_factors_are_refused(prices, tmp_path):
    """Issue 29: with CNN_FACTORS_CSV, day t's factor row was used at t's close, although the library publishes
    it weeks later; past the file's last date the betas turned NaN and the images showed zeros the model never
    trained on. Day t's betas now come from factors through t - factors_lag sessions, and a day whose betas
    would need factors the file does not have is refused with a message naming the dates and the way out."""
    from dataclasses import replace

    from cnn_pipelines.trading.features.panel import FactorsMissingError

    csv = tmp_path / "ff.csv"
    _ff_csv(csv, pd.bdate_range("2015-01-01", "2017-03-31"))
    lagged = replace(SMALL, factors_csv=str(csv), factors_lag=5)
    betas = [c for c in feature_columns(lagged) if "BETA" in c]
    day, start = "2016-06-30", "2016-06-01"
    panel = indicator_panel_table(prices, lagged, start, day).set_index(["date", "ticker"])[betas]
    # the same betas computed on prices that end 5 sessions earlier (so with factors only through then)
    sessions = sorted(set(pd.to_datetime(prices["date"])))
    cut = sessions[sessions.index(pd.Timestamp(day)) - 5]
    early = indicator_panel_table(until(prices, cut), replace(lagged, factors_lag=0), start, cut)
    early = early.set_index(["date", "ticker"])[betas]
    last = panel.xs(pd.Timestamp(day).date(), level="date")
    members = last.index.intersection(early.xs(cut.date(), level="date").index)
    assert len(members) > 3
    np.testing.assert_allclose(last.loc[members].to_numpy(), early.xs(cut.date(), level="date").loc[members].to_numpy(),
                               rtol=1e-5, equal_nan=True)
    unlagged = indicator_panel_table(prices, replace(lagged, factors_lag=0), start, day).set_index(["date", "ticker"])[betas]
    assert not np.allclose(unlagged.xs(pd.Timestamp(day).date(), level="date").loc[members].to_numpy(),
                           last.loc[members].to_numpy(), equal_nan=True)
    short = tmp_path / "short.csv"
    _ff_csv(short, pd.bdate_range("2015-01-01", "2016-06-15"))
    with pytest.raises(FactorsMissingError, match=r"ends on 2016-06-15.*2016-06-30.*through 2016-06-23.*CNN_FACTORS_CSV"):
        indicator_panel_table(prices, replace(lagged, factors_csv=str(short)), start, day)


def _whole_panel(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """The panel computed the way it was before shards: every feature on the whole (date x ticker) arrays."""
    from cnn_pipelines.trading.features.indicators import technical_features
    from cnn_pipelines.trading.features.panel import beta_features, compute_universe
    from cnn_pipelines.trading.features.wide import to_wide

    bars = to_wide(prices)
    u = compute_universe(bars, s)
    d = bars.dates
    mask = u.member & bars.has_bar & ((d >= pd.Timestamp(start)) & (d <= pd.Timestamp(end)))[:, None]
    feats = {**technical_features(bars.high, bars.low, bars.close, bars.volume, s.periods), **beta_features(bars, u, s)}
    rows, cols = np.nonzero(mask)
    out = pd.DataFrame({c: feats[c][mask].astype("float32") for c in feature_columns(s)})
    out.insert(0, "ticker", pd.array(np.asarray(bars.tickers)[cols], dtype="string"))
    out.insert(0, "date", d[rows].date)
    return out


@pytest.fixture(scope="module")
def factor_csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ff") / "ff.csv"
    _ff_csv(path, pd.bdate_range("2015-01-01", "2017-03-31"), seed=3)
    return str(path)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shard=st.integers(1, 17), with_csv=st.booleans(), first=st.sampled_from(["2016-01-04", "2016-11-15"]))
def test_a_panel_built_in_ticker_shards_is_the_whole_panel(prices, factor_csv, shard, with_csv, first):
    """Issue 30: the per-ticker features are computed a shard of tickers at a time (memory bounded by the shard,
    not the universe). Every value must be exactly the one computed on all names at once, with built or
    published factors, whatever the shard size; each shard is in (date, ticker) order and shards never overlap."""
    from dataclasses import replace

    from cnn_pipelines.trading.features.panel import iter_panel_shards

    s = replace(SMALL, shard_tickers=shard, **({"factors_csv": factor_csv, "factors_lag": 3} if with_csv else {}))
    whole = _whole_panel(prices, s, first, "2017-01-31")
    pieces = list(iter_panel_shards(prices, s, first, "2017-01-31"))
    assert all(len(set(p["ticker"])) <= shard for p in pieces)
    seen = [set(p["ticker"]) for p in pieces]
    assert sum(map(len, seen)) == len(set().union(*seen)) == whole["ticker"].nunique()
    for p in pieces:
        assert p.equals(p.sort_values(["date", "ticker"], kind="stable"))
    joined = pd.concat(pieces, ignore_index=True).sort_values(["date", "ticker"], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole, check_exact=True)
    pd.testing.assert_frame_equal(indicator_panel_table(prices, s, first, "2017-01-31"), whole, check_exact=True)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shard=st.integers(1, 9), workers=st.integers(2, 3))
def test_shards_computed_in_worker_processes_give_the_panel_and_summary_of_one_process(prices, shard, workers):
    """Issue 30: shards computed side by side in forked processes, each writing its pieces into the spool's
    folder, give exactly the spool (every month) and the summary (NaN shares, family correlations) that one
    process gives; and the spool's folder is removed with it."""
    from dataclasses import replace

    from cnn_pipelines.trading.features.sharding import spool_panel

    one, summary_one, used_one = spool_panel(prices, replace(SMALL, shard_tickers=shard, panel_workers=1),
                                             "2016-11-15", "2017-01-31")
    many, summary_many, used = spool_panel(prices, replace(SMALL, shard_tickers=shard, panel_workers=workers),
                                           "2016-11-15", "2017-01-31")
    assert used_one == 1 and used == min(workers, summary_one.shards) and summary_many.shards == summary_one.shards
    assert many.day_rows == one.day_rows and many.day_tickers == one.day_tickers and many.tickers == one.tickers
    for month in ("2016-11", "2016-12", "2017-01"):
        assert many.month(month).equals(one.month(month)), month
    pd.testing.assert_series_equal(summary_many.nan_share(), summary_one.nan_share(), check_exact=True)
    pd.testing.assert_frame_equal(summary_many.correlation(), summary_one.correlation(), check_exact=True)
    folder = many.dir
    many.close()
    one.close()
    assert not folder.exists()
