"""The backtest's rules on hand-computed cases: which open a position enters and leaves at, what happens when a
bar is missing, and the statistics a reader compares strategies by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.evaluation.backtest import (TRADING_DAYS, long_short_weights, max_drawdown, performance,
                                                       run_backtest, trade_returns)

D = pd.bdate_range("2024-01-08", periods=6)


def bars(table: dict[str, list[float | None]], close_mult: float = 1.0) -> pd.DataFrame:
    """Canonical rows from opens per ticker (None: no bar that day); close = open x close_mult."""
    rows = [(D[i].date(), t, o, o * 1.02, o * 0.98, o * close_mult, 100.0)
            for t, series in table.items() for i, o in enumerate(series) if o is not None]
    return pd.DataFrame(rows, columns=["date", "ticker", "open", "high", "low", "close", "volume"])


def test_a_position_runs_from_the_next_open_to_the_open_period_sessions_later():
    tr = trade_returns(bars({"A": [10, 11, 12, 15, 18, 20]}), period=1)
    r = tr.returns["A"]
    assert r.iloc[0] == pytest.approx(12 / 11 - 1) and r.iloc[3] == pytest.approx(20 / 18 - 1)
    assert r.iloc[4:].isna().all()  # the last two signal days are not realized yet
    two = trade_returns(bars({"A": [10, 11, 12, 15, 18, 20]}), period=2).returns["A"]
    assert two.iloc[0] == pytest.approx(15 / 11 - 1) and two.iloc[2] == pytest.approx(20 / 15 - 1)
    assert two.iloc[3:].isna().all()
    assert not tr.last_price_exit.to_numpy().any() and not tr.no_entry.iloc[:4].to_numpy().any()


def test_a_missing_exit_bar_exits_at_the_last_real_close():
    tr = trade_returns(bars({"A": [10, 11, 12, None, None, None], "B": [5] * 6}, close_mult=1.1), period=1)
    # signal on day 1: enter at day 2's open (12), no bar at day 3's open: exit at day 2's close (13.2)
    assert tr.returns["A"].iloc[1] == pytest.approx(1.1 - 1)
    assert tr.last_price_exit["A"].iloc[1] and not tr.last_price_exit["A"].iloc[0]
    # signal on day 2: no bar at the entry open, so no trade at all
    assert np.isnan(tr.returns["A"].iloc[2]) and tr.no_entry["A"].iloc[2]
    assert not tr.last_price_exit["A"].iloc[2]


def test_an_exit_two_sessions_on_uses_the_latest_bar_before_it():
    tr = trade_returns(bars({"A": [10, 11, 12, 13, None, None], "B": [5] * 6}, close_mult=1.0), period=3)
    # signal day 0: enter day 1 open (11); exit at day 4's open, missing: last real close is day 3's (13)
    assert tr.returns["A"].iloc[0] == pytest.approx(13 / 11 - 1) and tr.last_price_exit["A"].iloc[0]


def test_a_bar_before_the_entry_is_never_an_exit_price():
    tr = trade_returns(bars({"A": [10, 11, None, None, None, None], "B": [5] * 6}), period=1)
    # signal day 0: enter day 1 (11), exit day 2 missing: the last real bar is day 1's own close
    assert tr.returns["A"].iloc[0] == pytest.approx(0.0)


def test_sessions_without_any_bar_still_count():
    p = bars({"A": [10, 11, None, 13, 14, 15]})
    p = p[p["date"] != D[2].date()]
    without = trade_returns(p, 1)
    with_sessions = trade_returns(p, 1, sessions=pd.DatetimeIndex(D))
    assert len(without.returns) == 5 and len(with_sessions.returns) == 6
    # the missing session is a missing bar: day 0's trade enters at 11; A trades again on day 3, so it exits
    # at that re-open (13), flagged as such; without the sessions day 3 simply is the next session
    assert with_sessions.returns["A"].iloc[0] == pytest.approx(13 / 11 - 1) and with_sessions.reopen_exit["A"].iloc[0]
    assert without.returns["A"].iloc[0] == pytest.approx(13 / 11 - 1) and not without.reopen_exit["A"].iloc[0]
    two_days = trade_returns(p, 2, sessions=pd.DatetimeIndex(D)).returns["A"]  # two sessions on: day 2 is one
    assert two_days.iloc[0] == pytest.approx(13 / 11 - 1) and trade_returns(p, 2).returns["A"].iloc[0] == pytest.approx(14 / 11 - 1)
    only_inside = trade_returns(p, 1, sessions=pd.bdate_range("2024-01-01", periods=20))
    assert only_inside.returns.index.min() == pd.Timestamp(D[0]) and only_inside.returns.index.max() == pd.Timestamp(D[-1])


def test_without_a_close_column_a_delisting_is_unrealized_and_a_halt_exits_at_the_re_open():
    p = bars({"A": [10, 11, None, None, None, None], "B": [1] * 6}).drop(columns="close")
    tr = trade_returns(p, 1)
    assert np.isnan(tr.returns["A"].iloc[0]) and not tr.last_price_exit["A"].iloc[0]
    halt = trade_returns(bars({"A": [10, 11, None, 13, 14, 15], "B": [1] * 6}).drop(columns="close"), 1)
    assert halt.returns["A"].iloc[0] == pytest.approx(13 / 11 - 1) and halt.reopen_exit["A"].iloc[0]


def test_weights_long_top_k_short_bottom_k_ties_by_ticker():
    pred = pd.DataFrame({"A": [1.0, 5.0], "B": [2.0, 5.0], "C": [3.0, 5.0], "D": [4.0, 5.0], "E": [np.nan, 5.0]},
                        index=D[:2])
    w = long_short_weights(pred, 2)
    assert w.iloc[0].tolist() == [-0.5, -0.5, 0.5, 0.5, 0.0]
    # a day of identical predictions carries no ranking: the same names top both books and net to nothing
    assert (w.iloc[1] == 0).all()


def test_weights_shrink_k_on_thin_days_and_hold_nothing_below_two_names():
    pred = pd.DataFrame({"A": [1.0, 1.0, np.nan], "B": [2.0, np.nan, np.nan], "C": [3.0, np.nan, np.nan]}, index=D[:3])
    w = long_short_weights(pred, 5)
    assert w.iloc[0].tolist() == [-1.0, 0.0, 1.0]  # 3 names: k = 1
    assert (w.iloc[1:] == 0).all().all()


def test_performance_statistics():
    r = pd.Series([0.01, -0.02, 0.03, 0.0, np.nan])
    out = performance(r, benchmark=pd.Series([0.02, -0.01, 0.01, 0.01, 0.5]))
    x = r.dropna()
    assert out["total_return"] == pytest.approx(1.01 * 0.98 * 1.03 - 1)
    assert out["annual_return"] == pytest.approx((1.01 * 0.98 * 1.03) ** (TRADING_DAYS / 4) - 1)
    assert out["annual_volatility"] == pytest.approx(x.std() * np.sqrt(252))
    assert out["sharpe"] == pytest.approx(x.mean() / x.std() * np.sqrt(252))
    assert out["max_drawdown"] == pytest.approx(0.98 - 1)
    b = np.array([0.02, -0.01, 0.01, 0.01])
    assert out["beta"] == pytest.approx(np.cov(x, b)[0, 1] / np.var(b, ddof=1))
    flat = performance(pd.Series([0.0, 0.0]), benchmark=pd.Series([0.01, 0.01]))
    assert np.isnan(flat["sharpe"]) and np.isnan(flat["beta"])
    assert "beta" not in performance(x)
    assert np.isnan(performance(pd.Series([], dtype=float))["annual_return"])


def test_max_drawdown_is_the_worst_fall_from_a_peak():
    assert max_drawdown(pd.Series([0.1, -0.5, 0.2, -0.1])) == pytest.approx(-0.5)  # 1.1 -> 0.55
    assert max_drawdown(pd.Series([-0.1, 0.5, -0.4])) == pytest.approx(-0.4)  # from the new peak 1.35
    assert max_drawdown(pd.Series([0.1, 0.1])) == 0.0


def test_backtest_books_costs_benchmark_legs_and_events():
    prices = bars({"A": [10, 10, 11, 11, 11, 11], "B": [20] * 6, "C": [30, 30, 30, None, None, None],
                   "D": [40, 40, 38, 38, 38, 38], "E": [50, 50, 50, None, 50, 50]})
    preds = pd.DataFrame([(D[i].date(), t, v[i]) for t, v in
                          {"A": [4, 4, 1], "B": [3, 3, 2], "C": [2, 1, 4], "D": [1, 2, 3],
                           "E": [2.5, 2.5, 2.5]}.items() for i in range(3)],  # E, never held, misses a bar
                         columns=["date", "ticker", "prediction"])
    res = run_backtest(preds, prices, k=1, cost_bps=25)
    d = res.daily.set_index("date")
    assert list(d.index) == list(pd.to_datetime(D[:3]))
    assert d["gross"].iloc[0] == pytest.approx(0.10 + 0.05)             # long A +10 %, short D -5 %
    assert d["long"].iloc[0] == pytest.approx(0.10) and d["short"].iloc[0] == pytest.approx(0.05)
    assert d["turnover"].tolist() == pytest.approx([2.0, 2.0, 4.0])     # entry; D->C; both books flip
    assert d["cost"].tolist() == pytest.approx([2.0 * 25e-4, 2.0 * 25e-4, 4.0 * 25e-4])
    assert (d["net"] == d["gross"] - d["cost"]).all()
    assert d["benchmark"].iloc[0] == pytest.approx(np.mean([0.10, 0.0, 0.0, -0.05, 0.0]))
    # day 2: long C, which has no bar to enter at: cash, not a return; short A, flat
    assert d["gross"].iloc[2] == pytest.approx(0.0) and d["long"].iloc[2] == 0.0
    # day 1: long A (flat), short C, which has no bar on day 3: it exits at day 2's close (30), reported
    assert d["gross"].iloc[1] == pytest.approx(0.0)
    ev = res.events
    assert list(ev.columns) == ["date", "ticker", "event"] and list(ev.index) == [0, 1]
    assert ev[["ticker", "event"]].values.tolist() == [["C", "exited at last real price"],
                                                      ["C", "no bar at the entry open: held cash"]]
    assert list(ev["date"]) == [pd.Timestamp(D[1]), pd.Timestamp(D[2])]
    stats = res.stats
    assert list(stats.columns) == ["long_short", "equal_weight_universe"]
    assert stats.loc["mean_daily_turnover", "long_short"] == pytest.approx(8.0 / 3)
    assert np.isnan(stats.loc["mean_daily_turnover", "equal_weight_universe"])
    assert stats.loc["gross_sharpe", "long_short"] == pytest.approx(performance(d["gross"])["sharpe"])
    assert stats.loc["total_return", "long_short"] == pytest.approx(float((1 + d["net"]).prod() - 1))
    assert stats.loc["beta", "equal_weight_universe"] == pytest.approx(1.0)
    assert stats.loc["gross_sharpe", "equal_weight_universe"] == stats.loc["sharpe", "equal_weight_universe"]
    b = d["benchmark"]
    assert stats.loc["beta", "long_short"] == pytest.approx(np.cov(d["net"], b)[0, 1] / np.var(b, ddof=1))


def test_the_first_day_turnover_is_the_entry_and_sessions_reach_the_backtest():
    prices = bars({"A": [10, 10, 11, 12, 12, 12], "B": [20] * 6, "C": [30] * 6})
    preds = pd.DataFrame([(D[0].date(), "A", 1.0)] + [(D[i].date(), t, v) for i in (1, 2)
                                                      for t, v in (("A", 3.0), ("B", 2.0), ("C", 1.0))],
                         columns=["date", "ticker", "prediction"])
    res = run_backtest(preds, prices, k=1, cost_bps=0)
    assert res.daily["turnover"].tolist() == pytest.approx([0.0, 2.0, 0.0])  # day 0: one name, no book
    # a session with no bar at all (the vendor skipped it): with the exchange's sessions it is a missing bar
    gap = prices[prices["date"] != D[3].date()]
    plain = run_backtest(preds, gap, k=1, cost_bps=0).daily.set_index("date")["gross"]
    with_sessions = run_backtest(preds, gap, k=1, cost_bps=0, sessions=pd.DatetimeIndex(D)).daily.set_index("date")["gross"]
    assert plain.iloc[1] == pytest.approx(12 / 11 - 1) and with_sessions.iloc[1] == pytest.approx(12 / 11 - 1)
    # ... which A, trading again the session after, exits at its re-open: reported only where the sessions say so
    halted = run_backtest(preds, gap, k=1, cost_bps=0, sessions=pd.DatetimeIndex(D)).events
    assert sorted(halted[["ticker", "event"]].values.tolist()) == [["A", "halted: exited at the re-open"],
                                                                   ["C", "halted: exited at the re-open"]]
    assert run_backtest(preds, gap, k=1, cost_bps=0).events.empty


def test_the_default_holding_is_one_session():
    p = bars({"A": [10, 11, 12, 15, 18, 20]})
    pd.testing.assert_frame_equal(trade_returns(p).returns, trade_returns(p, 1).returns)


def test_a_halt_exits_at_the_re_open_and_only_a_delisting_at_the_last_close():
    """Issue 29: a missing exit bar exited at the last close even when the name traded again later (a halt),
    booking a price the position could never have been sold at. A halted name exits at its re-open; only a
    name that never trades again exits at its last real price."""
    tr = trade_returns(bars({"A": [10, 11, None, None, None, 13], "B": [5] * 6}, close_mult=1.05), period=3)
    # signal day 0: enter at day 1's open (11); days 2-4 have no bar; A re-opens on day 5 at 13
    assert tr.returns["A"].iloc[0] == pytest.approx(13 / 11 - 1)
    assert tr.reopen_exit["A"].iloc[0] and not tr.last_price_exit["A"].iloc[0]
    gone = trade_returns(bars({"A": [10, 11, None, None, None, None], "B": [5] * 6}, close_mult=1.05), period=3)
    assert gone.returns["A"].iloc[0] == pytest.approx(1.05 - 1)  # never trades again: day 1's close (11.55)
    assert gone.last_price_exit["A"].iloc[0] and not gone.reopen_exit["A"].iloc[0]


def test_three_sessions_realize_one_trade():
    tr = trade_returns(bars({"A": [10, 11, 12]}), period=1)
    assert tr.returns["A"].iloc[0] == pytest.approx(12 / 11 - 1) and tr.returns["A"].iloc[1:].isna().all()
