"""Properties of one ingestion (prices/ingest.py) over generated vendor batches and stored lakes.

Each property failed on the code before issue 27: a ticker whose file was empty, truncated or gone lost its
stored rows; one bad bar quarantined a ticker's whole range (so a range run and a day-by-day run stored
different rows); a stale bar on an unscheduled closure (2018-12-05) was rejected; the same bar in two files,
equal to 1e-15, was a "conflicting duplicate" naming no file.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.ingest import context_start, ingest
from cnn_pipelines.trading.prices.validation import CANONICAL_COLUMNS, PriceValidationError, validate_prices

XNYS = trading_calendar("XNYS")
# Three weeks around NYSE's unscheduled closure of 2018-12-05 (national day of mourning) and Christmas.
FIRST, LAST = dt.date(2018, 11, 26), dt.date(2018, 12, 28)
WEEKDAYS = [d.date() for d in pd.bdate_range(FIRST, LAST)]
TICKERS = ["AAA", "BBB", "CCC"]
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def clean_bars(seed: int) -> pd.DataFrame:
    """Consistent bars for every ticker on every session from FIRST - 14 days to LAST."""
    rng = np.random.default_rng(seed)
    days = [d.date() for d in XNYS.sessions(FIRST - dt.timedelta(days=14), LAST)]
    rows = []
    for t in TICKERS:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        opn = close * np.exp(rng.normal(0, 0.005, len(days)))
        hi, lo = np.maximum(opn, close) * 1.01, np.minimum(opn, close) * 0.99
        rows.append(pd.DataFrame({"date": days, "ticker": t, "open": opn, "high": hi, "low": lo, "close": close,
                                  "volume": rng.integers(1_000, 9_000, len(days)).astype(float)}))
    return pd.concat(rows, ignore_index=True)


@st.composite
def vendor_batches(draw) -> pd.DataFrame:
    """A vendor's rows: clean bars, then random damage of every kind the rules know."""
    bars = clean_bars(draw(st.integers(0, 10_000)))
    n = len(bars)
    idx = st.integers(0, n - 1)
    for i in draw(st.lists(idx, max_size=4)):                       # bad bars: rejected, that day only
        col, value = draw(st.sampled_from([("close", -1.0), ("volume", -5.0), ("low", np.nan), ("high", 0.0)]))
        bars.loc[i, col] = value
    bars = bars.drop(index=draw(st.lists(idx, max_size=6, unique=True)))  # missing bars
    extra = []
    for i in draw(st.lists(st.sampled_from(list(bars.index)), max_size=4)):  # duplicates, equal or not
        row = bars.loc[[i]].copy()
        if draw(st.booleans()):
            row[["open", "high", "low", "close"]] *= 1 + 1e-12          # a float round trip: the same bar
        else:
            row["close"] = row["close"] * 1.001                          # a different bar: conflict
        extra.append(row)
    for day in draw(st.lists(st.sampled_from([dt.date(2018, 12, 5), dt.date(2018, 12, 25), dt.date(2018, 12, 1)]),
                             max_size=3, unique=True)):                  # closures, holidays, weekends
        t = draw(st.sampled_from(TICKERS))
        prev = bars[(bars["ticker"] == t) & (bars["date"] < day)].sort_values("date").tail(1)
        if len(prev):
            row = prev.assign(date=day)
            if draw(st.booleans()):
                row["close"] *= 1.03                                     # a bar of its own: rejected
            extra.append(row)
    bars = pd.concat([bars, *extra], ignore_index=True)
    return bars.sample(frac=1, random_state=draw(st.integers(0, 1000))).reset_index(drop=True)


def in_days(df: pd.DataFrame, lo: dt.date, hi: dt.date) -> pd.DataFrame:
    return df.loc[(df["date"] >= lo) & (df["date"] <= hi)]


def fetch(batch: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """What a source returns for a run over [start, end]: its rows from the context start on."""
    return in_days(batch, context_start(start), end).reset_index(drop=True)


def run(batch: pd.DataFrame, lake: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """One range run against an in-memory lake: the lake afterwards (the run's days replaced)."""
    stored = in_days(lake, start, end)
    written = ingest(fetch(batch, start, end), stored, start, end, XNYS).table
    assert in_days(written, start, end).shape[0] == len(written), "a run writes only its own days"
    outside = lake.loc[(lake["date"] < start) | (lake["date"] > end)]
    return canonical(pd.concat([f for f in (outside, written) if len(f)]) if len(outside) + len(written) else EMPTY)


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    out = df[CANONICAL_COLUMNS].astype({"ticker": str}).sort_values(["date", "ticker"], kind="stable")
    return out.reset_index(drop=True)


EMPTY = pd.DataFrame({c: pd.Series([], dtype=object if c in ("date", "ticker") else float) for c in CANONICAL_COLUMNS})


@settings(PROPERTY, max_examples=12)  # each example is 26 ingestions (one range, 25 days); CI draws new ones each run
@given(batch=vendor_batches())
def test_a_range_run_stores_what_day_by_day_runs_store(batch):
    """Validation is day-local: one run over the range and one run per weekday leave the same lake."""
    whole = run(batch, EMPTY, FIRST, LAST)
    daily = EMPTY
    for day in WEEKDAYS:
        daily = run(batch, daily, day, day)
    pd.testing.assert_frame_equal(whole, daily)
    # the closure of 2018-12-05 and Christmas never enter the lake; a stale repeat there is a repair
    assert not set(whole["date"]) & {dt.date(2018, 12, 5), dt.date(2018, 12, 25), dt.date(2018, 12, 1)}


@PROPERTY
@given(batch=vendor_batches(), second=vendor_batches(), data=st.data())
def test_nothing_stored_is_lost_whatever_the_source_now_holds(batch, second, data):
    """A re-ingestion over a lake keeps every stored row the new batch does not deliver as a valid bar, byte
    for byte, and names the tickers it kept rows for; what the batch delivers validly replaces what was stored."""
    lake = run(batch, EMPTY, FIRST, LAST)
    # the source now: another vendor batch, cut short, with some tickers' files emptied or gone
    cut = data.draw(st.sampled_from(WEEKDAYS))
    gone = data.draw(st.lists(st.sampled_from(TICKERS), max_size=2, unique=True))
    now = second.loc[(second["date"] <= cut) & ~second["ticker"].isin(gone)].reset_index(drop=True)
    start = data.draw(st.sampled_from(WEEKDAYS))
    end = data.draw(st.sampled_from([d for d in WEEKDAYS if d >= start]))
    stored = in_days(lake, start, end)
    done = ingest(fetch(now, start, end), stored, start, end, XNYS)
    after = canonical(done.table)
    delivered, _ = validate_prices(fetch(now, start, end), calendar=XNYS, strict=False, window=(start, end))
    delivered = canonical(delivered)
    key = ["date", "ticker"]
    merged = canonical(stored).merge(after, on=key, how="left", suffixes=("", "_after"), indicator=True)
    assert (merged["_merge"] == "both").all(), "a stored row was dropped"
    not_delivered = ~canonical(stored).set_index(key).index.isin(delivered.set_index(key).index)
    for col in ["open", "high", "low", "close", "volume"]:  # kept rows are the stored values, exactly
        assert (merged.loc[not_delivered, col] == merged.loc[not_delivered, f"{col}_after"]).all()
    pd.testing.assert_frame_equal(after.merge(delivered[key], on=key), delivered)
    lost_tickers = set(canonical(stored).loc[not_delivered, "ticker"])
    assert lost_tickers <= set(done.held), "a ticker with kept rows is not reported"


@PROPERTY
@given(batch=vendor_batches(), second=vendor_batches(), data=st.data())
def test_every_held_ticker_has_a_quarantine_row_with_every_column(batch, second, data):
    """Whatever is held back (bad bars, unreadable files, stored days the source no longer has, any mix or just
    one kind), the quarantine names every held ticker and carries the dated columns, empty where a row has no
    day: a run whose only problem was an unreadable file crashed on "KeyError: 'date'" after writing its bars."""
    lake = run(batch, EMPTY, FIRST, LAST)
    gone = data.draw(st.lists(st.sampled_from(TICKERS), max_size=2, unique=True))
    unreadable = data.draw(st.lists(st.sampled_from(TICKERS), max_size=2, unique=True))
    now = second.loc[~second["ticker"].isin(gone + unreadable)].reset_index(drop=True)
    start = data.draw(st.sampled_from(WEEKDAYS))
    end = data.draw(st.sampled_from([d for d in WEEKDAYS if d >= start]))
    done = ingest(fetch(now, start, end), in_days(lake, start, end), start, end, XNYS,
                  file_errors={t: f"{t.lower()}.csv: cannot be read" for t in unreadable})
    q = done.quarantine
    assert ["rule", *CANONICAL_COLUMNS] == list(q.columns[: len(CANONICAL_COLUMNS) + 1])
    assert set(q["ticker"].astype(str)) == set(done.held) >= set(unreadable)
    undated = q.loc[pd.to_datetime(q["date"], errors="coerce").isna(), "rule"]
    assert all(r.startswith(("unreadable file", "source lacks")) for r in undated)


@PROPERTY
@given(batch=vendor_batches(), files=st.integers(1, 3), seed=st.integers(0, 1000))
def test_file_and_row_order_do_not_change_what_is_stored(batch, files, seed):
    """The same rows split over files in another order, shuffled, validate to the same table."""
    rng = np.random.default_rng(seed)
    named = batch.assign(source_file=[f"f{i}.csv" for i in rng.integers(0, files, len(batch))])
    a, _ = validate_prices(named, calendar=XNYS, strict=False, window=(FIRST, LAST))
    b, _ = validate_prices(named.sample(frac=1, random_state=seed), calendar=XNYS, strict=False,
                           window=(FIRST, LAST))
    pd.testing.assert_frame_equal(a, b)


def test_a_truncated_empty_or_missing_file_keeps_the_stored_history_and_says_so():
    """Example of the property above with the messages a user reads."""
    bars = clean_bars(1)
    lake = run(bars, EMPTY, FIRST, LAST)
    now = bars.loc[(bars["ticker"] != "CCC") & ~((bars["ticker"] == "BBB") & (bars["date"] > dt.date(2018, 12, 14)))]
    done = ingest(fetch(now, FIRST, LAST), in_days(lake, FIRST, LAST), FIRST, LAST, XNYS)
    pd.testing.assert_frame_equal(canonical(done.table), lake)
    assert done.held == ["BBB", "CCC"]
    rules = dict(zip(done.quarantine["ticker"], done.quarantine["rule"]))
    assert "source covers 2018-11-26..2018-12-14" in rules["BBB"] and "lake holds through 2018-12-28" in rules["BBB"]
    assert "no rows in this range" in rules["CCC"]


def test_a_delisting_is_not_a_loss():
    """A source whose history ends where the lake's does is a delisting: nothing quarantined."""
    bars = clean_bars(2)
    bars = bars.loc[(bars["ticker"] != "CCC") | (bars["date"] <= dt.date(2018, 12, 10))]
    lake = run(bars, EMPTY, FIRST, dt.date(2018, 12, 14))
    done = ingest(fetch(bars, FIRST, LAST), in_days(lake, FIRST, LAST), FIRST, LAST, XNYS)
    assert done.held == [] and len(done.kept) == 0


def test_near_duplicates_collapse_and_conflicts_name_both_files():
    bars = clean_bars(3).pipe(in_days, FIRST, LAST)
    msft = bars.loc[bars["ticker"] == "AAA"].assign(source_file="MSFT.csv")
    again = msft.assign(source_file="msft.parquet", close=msft["close"] * (1 + 4e-15))
    out, report = validate_prices(pd.concat([again, msft]), calendar=XNYS)
    assert len(out) == len(msft) and report.repairs["dropped_exact_duplicates"] == len(msft)
    wrong = again.assign(close=again["close"] * 1.01)
    with pytest.raises(PriceValidationError, match=r"conflicting duplicate .* in MSFT.csv, msft.parquet"):
        validate_prices(pd.concat([msft, wrong]), calendar=XNYS)


def test_a_stale_bar_on_an_unscheduled_closure_is_repaired_like_a_holiday():
    """An index file repeating the previous close (flat bar) on 2018-12-05, when NYSE was closed."""
    bars = clean_bars(4).pipe(in_days, FIRST, LAST)
    prev = bars.loc[(bars["ticker"] == "AAA") & (bars["date"] == dt.date(2018, 12, 4))].iloc[0]
    flat = pd.DataFrame([{"date": dt.date(2018, 12, 5), "ticker": "AAA", "open": prev["close"], "high": prev["close"],
                          "low": prev["close"], "close": prev["close"], "volume": 0.0}])
    out, report = validate_prices(pd.concat([bars, flat]), calendar=XNYS)
    assert report.repairs["dropped_off_calendar_repeats"] == 1 and len(out) == len(bars)
