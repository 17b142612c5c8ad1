"""Prices stay point-in-time across a split: a lake built night by night from the vendor's daily snapshots and
one backfilled in one go from the latest snapshot hold the same rows, and what readers see has no fake jump.

Before issue 27 each run stored bars adjusted as of the day it ran: the nightly lake kept AAA's pre-split bars
at twice the post-split scale (a -50 % day in features, labels and trades) and differed from a backfill.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.features.panel import forward_returns_table, indicator_panel_table
from cnn_pipelines.trading.prices.adjustments import adjust_as_of
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.ingest import context_start, ingest
from cnn_pipelines.trading.prices.sources import normalize_columns
from cnn_pipelines.trading.settings import FeatureSettings

XNYS = trading_calendar("XNYS")
SESSIONS = XNYS.sessions("2020-01-02", "2020-04-30")
SPLIT, DIVIDEND = SESSIONS[60], SESSIONS[30]   # AAA: 2:1 split and a 1 % dividend (ex-dates)
TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def economy(seed: int = 0) -> dict[str, pd.DataFrame]:
    """What traded: raw (unadjusted) bars per ticker."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in TICKERS:
        close = 80 * np.exp(np.cumsum(rng.normal(0, 0.015, len(SESSIONS))))
        volume = rng.integers(10_000, 50_000, len(SESSIONS)).astype(float)
        if t == "AAA":
            after = SESSIONS >= SPLIT
            close = np.where(after, close / 2, close)
            volume = np.where(after, volume * 2, volume)
        opn = close * np.exp(rng.normal(0, 0.004, len(SESSIONS)))
        out[t] = pd.DataFrame({"Date": SESSIONS, "Open": opn, "High": np.maximum(opn, close) * 1.01,
                               "Low": np.minimum(opn, close) * 0.99, "Close": close, "Volume": volume})
    return out


def snapshot(raw: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    """The vendor's file as downloaded at the close of ``as_of`` (yfinance's layout): Close split-adjusted up to
    that day, a Stock Splits column, Adj Close also dividend-adjusted."""
    frames = []
    for t, bars in raw.items():
        b = bars.loc[bars["Date"] <= as_of].copy()
        split_later = (t == "AAA") & (b["Date"] < SPLIT) & (SPLIT <= as_of)
        k = np.where(split_later, 2.0, 1.0)
        for col in ("Open", "High", "Low", "Close"):
            b[col] = b[col] / k
        b["Volume"] = b["Volume"] * k
        div_later = (t == "AAA") & (b["Date"] < DIVIDEND) & (DIVIDEND <= as_of)
        b["Adj Close"] = b["Close"] * np.where(div_later, 0.99, 1.0)
        b["Stock Splits"] = np.where((t == "AAA") & (b["Date"] == SPLIT), 2.0, 0.0)
        frames.append(b.assign(Symbol=t))
    return pd.concat(frames, ignore_index=True)


def fetch(snap: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """What the files source returns from this snapshot for a run over [start, end]."""
    from cnn_pipelines.trading.prices.sources import _in_range

    frame = normalize_columns(snap, "vendor")
    return _in_range(frame, context_start(start), end, "vendor").reset_index(drop=True)


def store(lake: pd.DataFrame, written: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    outside = lake.loc[(lake["date"] < start) | (lake["date"] > end)] if len(lake) else lake
    out = pd.concat([f for f in (outside, written) if len(f)])
    return out.astype({"ticker": str}).sort_values(["date", "ticker"]).reset_index(drop=True)


def nightly_and_backfill() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = economy()
    days = [d.date() for d in SESSIONS]
    nightly = pd.DataFrame()
    for day in days:  # each night: that night's download, that night's partition
        stored = nightly.loc[nightly["date"] == day] if len(nightly) else nightly
        done = ingest(fetch(snapshot(raw, pd.Timestamp(day)), day, day), stored, day, day, XNYS)
        nightly = store(nightly, done.table, day, day)
    latest = snapshot(raw, SESSIONS[-1])
    backfill = ingest(fetch(latest, days[0], days[-1]), pd.DataFrame(), days[0], days[-1], XNYS).table
    return nightly, store(pd.DataFrame(), backfill, days[0], days[-1])


def test_nightly_and_backfilled_lakes_are_identical_across_a_split():
    nightly, backfill = nightly_and_backfill()
    pd.testing.assert_frame_equal(nightly, backfill, rtol=1e-12)
    aaa = backfill.loc[backfill["ticker"] == "AAA"].set_index("date")
    assert aaa.loc[SPLIT.date(), "adjustment"] == pytest.approx(0.5)
    assert aaa.loc[DIVIDEND.date(), "adjustment"] == pytest.approx(0.99)
    assert (aaa.drop(index=[SPLIT.date(), DIVIDEND.date()])["adjustment"] == 1.0).all()
    # stored as traded: the day before the split at the pre-split scale
    raw = economy()["AAA"].set_index("Date")
    assert aaa.loc[SESSIONS[59].date(), "close"] == pytest.approx(raw.loc[SESSIONS[59], "Close"])


def test_readers_see_no_fake_jump_and_features_and_labels_match():
    nightly, backfill = nightly_and_backfill()
    adjusted = adjust_as_of(backfill)
    aaa = adjusted.loc[adjusted["ticker"] == "AAA"].set_index("date")["close"]
    jump = aaa.loc[SPLIT.date()] / aaa.loc[SESSIONS[59].date()] - 1
    assert abs(jump) < 0.1  # the split is not a -50 % day
    dollar = adjusted["close"] * adjusted["volume"]
    assert np.allclose(dollar, backfill["close"] * backfill["volume"])  # traded dollar volume is kept
    s = FeatureSettings(universe_size=4, universe_window=20, universe_min_obs=15, warmup=0)
    start, end = SESSIONS[40].date(), SESSIONS[70].date()
    # features of each day as a nightly run computes them (its window adjusted as of that day) equal those of
    # one range run adjusted as of the range's end: the indicators are scale-free
    day = SESSIONS[65].date()
    window = nightly.loc[nightly["date"] <= day]
    one_day = indicator_panel_table(adjust_as_of(window), s, day, day)
    in_range = indicator_panel_table(adjust_as_of(backfill.loc[backfill["date"] <= end]), s, start, end)
    in_range = in_range.loc[in_range["date"] == day].reset_index(drop=True)
    pd.testing.assert_frame_equal(one_day.reset_index(drop=True), in_range, rtol=1e-4, atol=1e-5)
    labels = forward_returns_table(adjust_as_of(backfill), s, start, end).set_index(["date", "ticker"])
    assert abs(labels.loc[(SESSIONS[59].date(), "AAA"), "fwd_1d"]) < 0.1


def test_a_lake_written_before_adjustments_existed_still_reads(tmp_path):
    """Month files without the adjustment column (older lakes) read beside new ones, as adjustment 1."""
    from cnn_pipelines.storage import lake

    def bars(days, **extra):
        return pd.DataFrame({"date": days.date, "ticker": pd.array(["AAA"] * len(days), dtype="string"),
                             "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 100.0, **extra})

    jan, feb = pd.bdate_range("2021-01-04", "2021-01-29"), pd.bdate_range("2021-02-01", "2021-02-26")
    lake.write_partitions(tmp_path, "raw_prices", bars(jan), [str(d.date()) for d in jan])
    new = bars(feb, adjustment=1.0)
    new.loc[5, "adjustment"] = 0.5
    lake.write_partitions(tmp_path, "raw_prices", new, [str(d.date()) for d in feb])
    both = lake.read_partitions(tmp_path, "raw_prices", [str(d.date()) for d in jan.append(feb)])
    adjusted = adjust_as_of(both)
    assert len(adjusted) == len(jan) + len(feb) and "adjustment" not in adjusted
    assert (adjusted["close"].iloc[: len(jan) + 5] == 5.0).all() and (adjusted["close"].iloc[len(jan) + 5:] == 10.0).all()


def test_the_actions_are_their_own_asset_served_by_the_catalog(tmp_path):
    """raw_prices then price_adjustments through Dagster on files with a split and a dividend: raw_prices'
    metadata names both ex-dates; price_adjustments counts one split and one dividend, puts each on its own
    partition, passes its check, and the catalog's view lists exactly those two rows with the stored factors
    (no second copy: the view reads raw_prices' own column)."""
    import duckdb

    from cnn_pipelines.storage import lake
    from cnn_pipelines.trading.prices.assets import price_adjustments, raw_prices
    from cnn_pipelines.trading.prices.resources import FilePriceSource
    from cnn_pipelines_tests.conftest import lake_resources, run_range

    files = tmp_path / "files"
    files.mkdir()
    snap = snapshot(economy(), SESSIONS[-1])
    snap.loc[snap["Symbol"] == "BBB"].drop(columns="Symbol").to_csv(files / "BBB.csv", index=False)
    snap.loc[snap["Symbol"] == "AAA"].drop(columns="Symbol").to_csv(files / "AAA.csv", index=False)
    root = tmp_path / "lake"
    root.mkdir()
    first, last = str(SESSIONS[20].date()), str(SESSIONS[70].date())
    result = run_range([raw_prices, price_adjustments], first, last,
                       lake_resources(root, FilePriceSource(path=str(files))))
    assert result.success
    by_asset = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        by_asset.setdefault(m.asset_key.to_user_string(), {})[m.partition] = m.metadata
    raw_meta = by_asset["raw_prices"][last]
    actions = {r.data["ex_date"]: r.data for r in raw_meta["corporate_actions"].records}  # inline table
    assert set(actions) == {str(SPLIT.date()), str(DIVIDEND.date())} and raw_meta["corporate_actions_total"].value == 2
    assert actions[str(SPLIT.date())]["kind"] == "split" and actions[str(DIVIDEND.date())]["kind"] == "dividend"
    adj = by_asset["price_adjustments"]
    assert adj[last]["splits"].value == 1 and adj[last]["dividends"].value == 1 and adj[last]["reverse_splits"].value == 0
    assert adj[str(SPLIT.date())]["rows"].value == 1 and adj[str(DIVIDEND.date())]["rows"].value == 1
    assert sum(m["rows"].value for m in adj.values()) == 2
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == "price_adjustments"}
    assert checks == {"plausible_factors": True}
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        rows = con.execute("select ex_date, ticker, adjustment from price_adjustments order by ex_date").fetchall()
    assert [(str(d), t) for d, t, _ in rows] == [(str(DIVIDEND.date()), "AAA"), (str(SPLIT.date()), "AAA")]
    assert [a for *_, a in rows] == pytest.approx([0.99, 0.5])


def test_actions_are_classified_and_implausible_factors_are_named():
    """A factor below 0.8 is a split, above 1 a reverse split, otherwise a dividend; a factor that is not
    positive and finite or beyond 50:1 is named by the check."""
    from cnn_pipelines.trading.prices.assets import corporate_actions, implausible_factors

    stored = pd.DataFrame({"date": pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07",
                                                   "2021-01-08", "2021-01-11"]).date,
                           "ticker": ["A", "B", "C", "D", "E", "F"],
                           "adjustment": [1.0, 0.5, 0.99, 10.0, 0.8, 0.01]})
    events = corporate_actions(stored)
    assert list(events["ticker"]) == ["B", "C", "D", "E", "F"]
    assert list(events["kind"]) == ["split", "dividend", "reverse split", "dividend", "split"]
    assert list(implausible_factors(events)["ticker"]) == ["F"]
    odd = pd.DataFrame({"date": [0, 1, 2, 3], "ticker": ["P", "Q", "R", "S"], "adjustment": [0.0, float("nan"), 51.0, 50.0]})
    assert list(implausible_factors(odd)["ticker"]) == ["P", "Q", "R"]
    assert corporate_actions(stored.iloc[:0]).empty


def test_an_action_survives_a_rejected_ex_date_and_cent_rounding_is_not_an_action():
    """Found in review: a split whose ex-date bar was rejected was lost (a -50 % day), and an Adj Close rounded
    to cents made a tiny 'action' every day."""
    from cnn_pipelines.trading.prices.adjustments import adjustment_ratios
    from cnn_pipelines.trading.prices.validation import validate_prices

    days = [d.date() for d in SESSIONS[:6]]
    close = [100.0, 100.0, 50.0, 51.0, 50.0, 51.0]
    fetched = pd.DataFrame({"date": days, "ticker": "AAA", "open": close, "high": [c * 1.01 for c in close],
                            "low": [c * 0.99 for c in close], "close": close,
                            "adj_close": [50.0, 50.0, 50.0, 51.0, 50.0, 51.0], "volume": 1000.0})
    fetched.loc[2, ["high", "low"]] = [40.0, 60.0]  # the ex-date bar is broken: high < low
    valid, _ = validate_prices(fetched, calendar=XNYS, strict=False)
    ratios = adjustment_ratios(fetched, valid=valid).set_index("date")["adjustment"]
    assert days[2] not in ratios.index and ratios[days[3]] == pytest.approx(0.5)
    cents = pd.DataFrame({"date": days[:5], "ticker": "BBB", "close": [10.00, 10.10, 9.95, 10.20, 10.05],
                          "adj_close": [2.49, 2.51, 2.48, 2.54, 2.50]})
    assert (adjustment_ratios(cents)["adjustment"] == 1.0).all()


def test_the_universe_ranks_a_split_name_by_the_dollar_volume_it_really_traded():
    """Issue 29: the earlier test of dollar volume after a split passed on the old code (the same member won
    either way). Here one slot is contested: AAA trades $100k a day throughout and splits 2:1 on day 25; BBB
    trades $95k. Adjusted as of day 35, AAA's earlier volumes are doubled as its prices are halved, so AAA
    wins; adjusting the prices but not the volumes (the bug) would halve 20 of its 30 window days to $50k and
    hand the slot to BBB."""
    from cnn_pipelines.trading.features.panel import universe_table

    days = pd.bdate_range("2021-01-04", periods=40)
    split = 25
    aaa_close = np.where(np.arange(40) < split, 100.0, 50.0)
    aaa_volume = np.where(np.arange(40) < split, 1000.0, 2000.0)
    rows = [pd.DataFrame({"date": days.date, "ticker": "AAA", "open": aaa_close, "high": aaa_close * 1.01,
                          "low": aaa_close * 0.99, "close": aaa_close, "volume": aaa_volume,
                          "adjustment": np.where(np.arange(40) == split, 0.5, 1.0)}),
            pd.DataFrame({"date": days.date, "ticker": "BBB", "open": 50.0, "high": 50.5, "low": 49.5, "close": 50.0,
                          "volume": 1900.0, "adjustment": 1.0})]
    prices = pd.concat(rows, ignore_index=True)
    s = FeatureSettings(universe_size=1, universe_window=30, universe_min_obs=25, warmup=0)
    day = days[35].date()
    members = universe_table(adjust_as_of(prices), s, day, day)
    assert members["ticker"].tolist() == ["AAA"]
    assert members["median_dollar_volume"].iloc[0] == pytest.approx(100_000.0)
    wrong = adjust_as_of(prices).drop(columns="volume").merge(prices[["date", "ticker", "volume"]],
                                                               on=["date", "ticker"])  # volumes as reported
    assert universe_table(wrong, s, day, day)["ticker"].tolist() == ["BBB"]  # so the data tells the two apart


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ratio=st.sampled_from([1.25, 1.5, 2.0, 3.0, 4.0, 10.0, 0.5, 0.2, 0.1]), at=st.integers(1, 58),
       seed=st.integers(0, 2**16), convention=st.sampled_from(["yfinance", "eod", "eod_no_adj", "sharadar"]))
def test_a_split_column_beside_traded_or_adjusted_closes_reads_as_the_same_traded_bars(tmp_path_factory, ratio, at,
                                                                                      seed, convention):
    """yfinance writes Close split-adjusted with Stock Splits 0 or k; Quandl's EOD writes Close as traded with
    Split 1 or k; Sharadar writes the traded close as closeunadj beside a split-adjusted close. Both columns are read as the split column, and the EOD file's earlier prices were multiplied
    by k (a 2:1 split doubled every price before it). Every convention reads as the bars that traded, with the
    split in adj_close."""
    from cnn_pipelines.trading.prices.sources import read_price_files

    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2021-01-04", periods=60)
    close = 40 * np.exp(rng.normal(0, 0.01, len(days)).cumsum())
    close[at:] /= ratio  # as traded: the close falls by the ratio on the ex-date
    volume = np.where(np.arange(len(days)) >= at, ratio, 1.0) * 1e6
    later = np.where(np.arange(len(days)) < at, ratio, 1.0)  # the split after each bar
    marks = np.where(np.arange(len(days)) == at, ratio, 0.0 if convention == "yfinance" else 1.0)
    if convention == "yfinance":
        file = pd.DataFrame({"Date": days, "Close": close / later, "Volume": volume * later, "Adj Close": close / later,
                             "Stock Splits": marks})
    elif convention == "sharadar":  # no split column: close and volume split-adjusted, closeunadj as traded
        file = pd.DataFrame({"date": days, "close": close / later, "volume": volume * later, "closeadj": close / later,
                             "closeunadj": close})
    else:
        file = pd.DataFrame({"Date": days, "Close": close, "Volume": volume, "Split": marks})
        if convention == "eod":
            file["Adj_Close"] = close / later
    shown = file["Close" if "Close" in file else "close"]
    file["Open"], file["High"], file["Low"] = shown, shown * 1.01, shown * 0.99
    folder = tmp_path_factory.mktemp("split")
    file.to_csv(folder / "AAA.csv", index=False)
    out = read_price_files(str(folder), days[0], days[-1]).set_index("date")
    np.testing.assert_allclose(out["close"].to_numpy(), close, rtol=1e-9)
    np.testing.assert_allclose(out["volume"].to_numpy(), volume, rtol=1e-9)
    np.testing.assert_allclose((out["adj_close"] / out["close"]).to_numpy(), 1 / later, rtol=1e-9)
