"""Evaluation without look-ahead (fitted in-window, every realized label scored, real exits): one test per
definition a quant signs off on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.trading.evaluation.audit import AUDIT_FEATURES, AUDIT_RESEARCH, fit_period
from cnn_pipelines.trading.evaluation.backtest import run_backtest
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.features.panel import feature_columns, forward_returns_table, indicator_panel_table, universe_table
from cnn_pipelines.trading.production.training import production_fold
from cnn_pipelines.trading.settings import FeatureSettings, ResearchSettings
from cnn_pipelines.trading.prices.sources import normalize_columns
from cnn_pipelines.trading.evaluation.tearsheet import factor_tearsheet
from cnn_pipelines.trading.research.walkforward import fold_for

FS, RS = AUDIT_FEATURES, AUDIT_RESEARCH


def bars(opens: dict[str, list[float]], closes: dict[str, list[float]] | None = None, start="2024-01-08"):
    days = pd.bdate_range(start, periods=max(len(v) for v in opens.values()))
    rows = []
    for t, series in opens.items():
        for i, o in enumerate(series):
            if o is None:
                continue  # no bar that day
            c = closes[t][i] if closes else o
            rows.append((days[i].date(), t, o, max(o, c) * 1.01, min(o, c) * 0.99, c, 1000.0))
    return pd.DataFrame(rows, columns=["date", "ticker", "open", "high", "low", "close", "volume"])


def test_tearsheet_does_not_credit_the_signal_day_over_a_missing_next_bar():
    # The signal is the day's own open-to-close move (known at the close). A name without a bar at t+1 must
    # not be credited open(t) -> open(t+2), which contains that move: such rows are dropped, not forward-filled.
    rng = np.random.default_rng(3)
    n_days, names = 70, [f"T{i:02d}" for i in range(24)]
    opens, closes = {}, {}
    for t in names:
        o, c = [100.0], []
        for i in range(n_days):
            c.append(o[i] * np.exp(rng.normal(0, 0.03)))           # the day's own open-to-close move
            o.append(c[i] * np.exp(rng.normal(0, 0.005)))          # next open near today's close
        opens[t], closes[t] = o[:n_days], c
        gaps = rng.uniform(size=n_days) < 0.35
        opens[t] = [None if g and 0 < i < n_days - 1 else v for i, (v, g) in enumerate(zip(opens[t], gaps))]
    prices = bars(opens, closes)
    px = prices.assign(date=pd.to_datetime(prices["date"]))
    signal = (px["close"] / px["open"] - 1).rename("prediction")
    preds = pd.concat([prices[["date", "ticker"]], signal], axis=1)
    preds = preds[pd.to_datetime(preds["date"]) < pd.bdate_range("2024-01-08", periods=n_days)[-3]]
    sessions = pd.bdate_range("2024-01-08", periods=n_days)
    sheet = factor_tearsheet(preds, prices, periods=(1,), sessions=sessions)
    assert abs(sheet.ic_summary.loc["1D", "ic_mean"]) < 0.06, sheet.ic_summary  # forward-filled: about 0.3
    assert sheet.sample["dropped_pct"] > 25  # the names with no bar at t+1 cannot be traded


def test_every_realized_label_is_scored_even_one_the_jump_rule_keeps_out_of_training():
    days = np.repeat(pd.bdate_range("2024-01-08", periods=3).date, 4)
    preds = pd.DataFrame({"date": days, "ticker": list("ABCD") * 3, "prediction": [1, 2, 3, 4] * 3,
                          "fwd_open_1d": [0.01, 0.02, 0.03, 0.90] * 3,          # D jumps +90 %: realized
                          "fwd_open_1d_ok": [True, True, True, False] * 3})
    ic, se, n = oos_ic(preds, "fwd_open_1d")
    assert n == 3 and ic == pytest.approx(1.0)
    preds.loc[preds["ticker"] == "D", "prediction"] = 0  # the model ranks D last; D then jumps the most
    assert oos_ic(preds, "fwd_open_1d")[0] == pytest.approx(-0.2)  # scored over all four (without D: +1.0)


def test_selection_layout_and_scaler_see_only_the_training_slice():
    prices = SyntheticMarket(MarketConfig(seed=4, n_tickers=30, inception="2015-01-01")).prices("2015-01-01", "2016-12-31")
    panel = indicator_panel_table(prices, FS, "2015-09-01", "2016-08-31")
    targets = forward_returns_table(prices, FS, "2015-09-01", "2016-08-31")
    period = "2016-07-01"
    fold = fold_for(period, RS, trading_calendar(FS.calendar))
    base = fit_period(panel, targets, period, FS, RS)
    cols = feature_columns(FS)
    rng = np.random.default_rng(1)

    def perturbed(lo, hi):
        p = panel.copy()
        d = pd.to_datetime(p["date"])
        m = ((d >= pd.Timestamp(lo)) & (d < pd.Timestamp(hi))).to_numpy()
        p.loc[m, cols] = p.loc[m, cols].to_numpy() * rng.uniform(0.0, 3.0, (m.sum(), len(cols))).astype(np.float32)
        return fit_period(p, targets, period, FS, RS)

    val = perturbed(fold.val_start, fold.cutoff)  # the validation slice that chooses the epochs
    pd.testing.assert_frame_equal(base[0], val[0])          # family ranking
    assert base[1].to_json() == val[1].to_json()            # clustering order and [-1, 1] scaler
    train = perturbed(fold.train_start, fold.val_start)     # the same change in the training slice shows
    assert base[1].to_json() != train[1].to_json()


def test_a_label_needs_a_real_bar_at_its_end_not_a_bar_filled_over_a_gap():
    opens = {t: [10.0 + i for i in range(80)] for t in ("A", "B", "C")}
    opens["A"][70] = None  # A has no bar on day 70
    prices = bars(opens)
    s = FeatureSettings(universe_size=3, universe_window=20, universe_min_obs=18)
    out = forward_returns_table(prices, s, "2024-03-01", "2024-05-30").set_index(["date", "ticker"])
    days = pd.bdate_range("2024-01-08", periods=80).date
    assert np.isnan(out.loc[(days[69], "A"), "fwd_1d"])          # close(70) does not exist
    assert np.isnan(out.loc[(days[68], "A"), "fwd_open_1d"])     # entry at open(69) fine, exit open(70) missing
    assert np.isnan(out.loc[(days[69], "A"), "fwd_open_1d"])     # no entry bar at 70
    assert out.loc[(days[69], "B"), "fwd_1d"] == pytest.approx(80 / 79 - 1, rel=1e-6)
    assert out.loc[(days[68], "B"), "fwd_open_1d"] == pytest.approx(80 / 79 - 1, rel=1e-6)
    assert out.loc[(days[71], "A"), "fwd_1d"] == pytest.approx(82 / 81 - 1, rel=1e-6)


def test_a_delisted_name_exits_at_its_last_real_price_and_is_reported():
    # A is bought at day 1's open (signal day 0) and never trades again after day 1's close
    opens = {"A": [10, 10, None, None, None], "B": [20] * 5, "C": [30] * 5, "D": [40] * 5}
    closes = {"A": [10, 12, None, None, None], "B": [20] * 5, "C": [30] * 5, "D": [40] * 5}
    prices = bars(opens, closes)
    days = pd.bdate_range("2024-01-08", periods=5)
    preds = pd.DataFrame([(days[0].date(), t, v) for t, v in zip("ABCD", [4, 3, 2, 1])],
                         columns=["date", "ticker", "prediction"])
    res = run_backtest(preds, prices, k=1, cost_bps=0, sessions=days)
    d = res.daily.set_index("date")
    assert d.loc[days[0], "long"] == pytest.approx(0.2)   # 10 -> 12, its last real price; was a silent 0
    assert res.events.to_dict("records") == [{"date": days[0], "ticker": "A", "event": "exited at last real price"}]
    sheet = factor_tearsheet(pd.DataFrame([(days[i].date(), t, v) for i in range(2) for t, v in zip("ABCD", [4, 3, 2, 1])],
                                          columns=["date", "ticker", "prediction"]), prices, periods=(1,), quantiles=2,
                             sessions=days)
    assert sheet.sample["last_price_exits"] == 1


def test_universe_dollar_volume_is_not_moved_by_a_later_dividend_or_split():
    days = pd.bdate_range("2023-01-02", periods=120)
    rng = np.random.default_rng(0)
    paths = {t: px * np.exp(np.cumsum(rng.normal(0, 0.001, 120))) for t, px in (("A", 100.0), ("B", 50.0))}

    def vendor(factor_before_event: float, n: int) -> pd.DataFrame:
        rows = []
        for t, vol in (("A", 1000.0), ("B", 2050.0)):
            close = paths[t][:n]
            f = np.full(n, 1.0)
            if t == "A":
                f[:100] = factor_before_event  # a dividend / split after day 100 rescales A's earlier Adj Close
            rows.append(pd.DataFrame({"Date": days[:n], "Symbol": t, "Open": close, "High": close * 1.01,
                                      "Low": close * 0.99, "Close": close, "Adj Close": close * f, "Volume": vol}))
        return pd.concat(rows, ignore_index=True)

    before = normalize_columns(vendor(1.0, 100), "v1")
    after = normalize_columns(vendor(0.5, 120), "v2")  # a 2:1 split-like factor on A's history
    s = FeatureSettings(universe_size=1, universe_window=20, universe_min_obs=18)
    u1 = universe_table(before.assign(date=pd.to_datetime(before["date"]).dt.date), s, days[30], days[99])
    u2 = universe_table(after.assign(date=pd.to_datetime(after["date"]).dt.date), s, days[30], days[99])
    pd.testing.assert_frame_equal(u1.reset_index(drop=True), u2.reset_index(drop=True))
    assert set(u1["ticker"]) == {"B"}  # B trades 2050 x 50 > 1000 x 100 of dollar volume


def test_one_setting_names_the_target_and_its_horizon_and_purge_follow():
    cal = trading_calendar("synthetic")
    assert ResearchSettings().target == "fwd_open_1d"  # default: what a signal can trade
    close5 = ResearchSettings(target="fwd_5d")
    assert (close5.horizon, close5.purge_days) == (5, 9)
    open1 = ResearchSettings()
    assert (open1.horizon, open1.purge_days) == (2, 6)
    assert fold_for("2016-07-01", close5, cal).cutoff < fold_for("2016-07-01", open1, cal).cutoff
    with pytest.raises(ValueError, match="target"):
        ResearchSettings(target="fwd_1w")


def test_the_trade_date_of_a_signal_is_the_next_exchange_session():
    nyse = trading_calendar("XNYS")
    fold = production_fold("2020-11-25", 12, 2, nyse)  # the Wednesday before Thanksgiving
    assert str(fold.test_start) == "2020-11-27"
    assert str(nyse.next_session("2020-07-02")) == "2020-07-06"  # July 3rd 2020: Independence Day observed
    assert str(trading_calendar("synthetic").next_session("2020-11-25")) == "2020-11-26"


def test_the_default_label_is_next_open_to_the_following_open_and_the_tearsheet_reports_both_ics():
    opens = {t: list(10 + np.arange(30) * (k + 1) * 0.1) for k, t in enumerate("ABCDEF")}
    closes = {t: [o * (1.02 if i % 2 else 0.99) for i, o in enumerate(v)] for t, v in opens.items()}
    prices = bars(opens, closes)
    s = FeatureSettings(universe_size=6, universe_window=5, universe_min_obs=5)
    out = forward_returns_table(prices, s, "2024-01-22", "2024-02-09").set_index(["date", "ticker"])
    days = pd.bdate_range("2024-01-08", periods=30).date
    assert out.loc[(days[12], "C"), "fwd_open_1d"] == pytest.approx(opens["C"][14] / opens["C"][13] - 1, rel=1e-6)
    assert out.loc[(days[12], "C"), "fwd_1d"] == pytest.approx(closes["C"][13] / closes["C"][12] - 1, rel=1e-6)
    preds = out.reset_index().assign(prediction=lambda f: f["fwd_open_1d"].fillna(0))
    sheet = factor_tearsheet(preds[["date", "ticker", "prediction", "fwd_open_1d", "fwd_1d"]], prices, periods=(1,),
                             quantiles=3)
    assert set(sheet.label_ic.index) == {"fwd_open_1d", "fwd_1d"}
    assert sheet.label_ic.loc["fwd_open_1d", "ic_mean"] == pytest.approx(1.0)

