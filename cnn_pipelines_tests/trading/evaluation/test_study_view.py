"""The study view: headline numbers rounded to what they mean, tables without nan, reasons for what is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.evaluation.study_assets import table_value
from cnn_pipelines.trading.evaluation.study_view import (backtest_figures, ic_sources, leaderboard_display,
                                                          leaderboard_trading, study_view, tearsheets_display, verdict)


def test_an_empty_lake_says_what_to_run_instead_of_showing_zeros(tmp_path):
    view = study_view(tmp_path, "fwd_open_1d")
    assert view.numbers == {} and "materialize the trading job" in view.missing["lake"]
    lake.write_partitions(tmp_path, "raw_prices", pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]).date,
                                                               "ticker": ["A"], "close": [1.0]}), ["2024-01-02"])
    lake.ensure_views(tmp_path, ["raw_prices"])
    view = study_view(tmp_path, "fwd_open_1d")
    assert view.numbers["price_range"] == "2024-01-02 .. 2024-01-02"
    assert {"predictions", "leaderboard", "backtest", "signals", "tearsheet"} <= set(view.missing)
    assert "evaluation_job" in view.missing["backtest"] and "research_job" in view.missing["predictions"]


def test_the_oos_ic_is_the_studys_one_statistic_and_the_verdict_says_when_the_sample_is_short(tmp_path):
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2024-01-02", periods=40)
    frame = pd.DataFrame([(d, f"T{i}") for d in days for i in range(12)], columns=["date", "ticker"])
    frame["fwd_open_1d"] = rng.normal(size=len(frame)).astype("float32")
    frame["prediction"] = (frame["fwd_open_1d"] + rng.normal(size=len(frame))).astype("float32")
    frame["date"] = frame["date"].dt.date
    for period, part in frame.groupby(pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-01")):
        lake.write_table(tmp_path, "oos_predictions", part.assign(period=pd.Timestamp(period).date()), period, "period")
    lake.ensure_views(tmp_path, ["oos_predictions"])
    view = study_view(tmp_path, "fwd_open_1d", oracle=lambda rows: pd.Series([0.5, 0.7]))
    ic, _, n = oos_ic(frame, "fwd_open_1d")
    assert view.numbers["oos_ic"] == round(ic, 4) and view.numbers["oos_days"] == n == 40
    assert view.numbers["periods"] == 2 and view.numbers["period_range"] == "2024-01 .. 2024-02"
    assert view.numbers["oracle_ic"] == 0.6 and "expected returns score +0.6000" in view.verdict
    assert "40 days is too short to judge" in view.verdict
    long = verdict({"oos_ic": 0.05, "oos_ic_se": 0.01, "oos_days": 500})
    assert "z 5.0" in long and "too short" not in long


def test_leaderboard_and_tables_follow_the_formatting_rules():
    board = pd.DataFrame({"rank": [1, 2], "model": ["cnn_ta", "ar_cnn"], "days": [65, 65], "coverage": [1.0, 0.99384],
                          "mean_ic": [0.0895113, 0.0101], "ic_se": [0.020852, 0.02], "ic_t": [4.29269, 0.5],
                          "top_minus_bottom_bps": [79.5748, 7.18], "mean_daily_turnover": [1.544615, 0.16],
                          "net_sharpe": [6.722524, np.nan], "net_annual_return": [8.008437, 0.1682]})
    shown = leaderboard_display(board)
    row = shown.iloc[0]
    assert row["IC"] == 0.0895 and row["s.e."] == 0.0209 and row["t"] == 4.29 and row["bps/day"] == 79.6
    assert row["net Sharpe"] == 6.72 and len(shown.columns) <= 7  # narrow enough to show whole in the UI
    table = table_value(shown)
    sharpe = [r.data["net Sharpe"] for r in table.records]
    assert sharpe == ["6.72", "n/a"]  # a gap reads n/a, never nan or None
    kinds = {c.name: c.type for c in table.schema.columns}
    assert kinds["IC"] == "float" and kinds["rank"] == "int" and kinds["model"] == "string"


def test_backtest_figures_are_annualized_from_daily_net_returns():
    daily = pd.DataFrame({"net": [0.01, -0.005] * 126, "turnover": [0.5] * 252})
    b = backtest_figures(daily)
    net = daily["net"]
    assert b["net_sharpe"] == pytest.approx(net.mean() / net.std() * np.sqrt(252))
    assert b["net_annual_return"] == pytest.approx(np.prod(1 + net) - 1)  # one year of days
    assert b["max_drawdown"] == pytest.approx(-0.005) and b["mean_daily_turnover"] == 0.5


def test_the_three_ics_of_one_model_each_say_which_rows_they_score():
    board = pd.DataFrame({"rank": [1, 2], "model": ["ar_cnn", "cnn_ta"], "mean_ic": [0.1, 0.090812], "days": [65, 64]})
    sheet = {"ic": {"ic_mean": {"1D": 0.109512, "5D": 0.05, "21D": 0.01}},
             "sample": {"days": 46, "last_date": "2026-11-03"}}
    table = ic_sources({"oos_ic": 0.0895, "oos_days": 65}, board, sheet, "fwd_open_1d")
    assert table["IC"].tolist() == [0.0895, 0.0908, 0.1095] and table["days"].tolist() == [65, 64, 46]
    assert "all 2 models" in table["rows scored"].iloc[1]  # cnn_ta's row, not the leader's
    assert table["rows scored"].iloc[0].endswith("against fwd_open_1d")
    assert "2026-11-03" in table["rows scored"].iloc[2] and "21D" in table["rows scored"].iloc[2]
    assert len(ic_sources({"oos_ic": 0.0895, "oos_days": 65}, None, None, "fwd_5d")) == 1  # nothing to compare


def test_the_leaderboards_other_tables_are_narrow_enough_to_show_whole():
    """The UI cuts a metadata table at its column's edge (measured: 6 short columns fit at 1600 px beside the page's other metadata, 7 did not)."""
    board = pd.DataFrame({"model": ["cnn_ta", "ar_cnn"], "monthly_ic": [np.nan, 0.05312], "mean_daily_turnover": [1.538, 0.16],
                          "net_annual_return": [6.019, 0.168], "coverage": [1.0, 0.99384]})
    trading = leaderboard_trading(board)
    assert len(trading.columns) <= 5 and trading["turnover %/day"].tolist() == [153.8, 16.0]
    assert trading["coverage %"].tolist() == [100.0, 99.4] and trading["net return %/yr"].tolist() == [601.9, 16.8]
    sheets = pd.DataFrame({"ic_1D": [0.11137], "ic_5D": [0.1], "ic_10D": [0.04], "ic_21D": [-0.07], "t_1D": [4.613],
                           "top_minus_bottom_bps_1D": [83.61], "rank_autocorrelation": [0.75]}, index=["cnn_ta"])
    shown = tearsheets_display(sheets)
    assert len(shown.columns) <= 6 and shown.iloc[0].tolist() == ["cnn_ta", 0.1114, 0.1, 0.04, -0.07, 83.6]


def test_position_events_are_three_narrow_columns_with_every_event_labelled():
    """backtest's positions without a real bar: a short label for every event run_backtest can write, the day
    as one unbroken date, and at most 20 rows (the total is its own key)."""
    import inspect
    import re

    from cnn_pipelines.trading.evaluation import backtest as bt
    from cnn_pipelines.trading.evaluation.assets import EVENT_LABELS, position_events

    written = set(re.findall(r'_events\([^\n]*, "([^"]+)"\)', inspect.getsource(bt.run_backtest)))
    assert written and written == set(EVENT_LABELS)
    events = pd.DataFrame({"date": pd.bdate_range("2026-09-01", periods=30), "ticker": "SYN0001",
                           "event": [sorted(written)[i % len(written)] for i in range(30)]})
    shown = position_events(events)
    assert list(shown.columns) == ["day", "ticker", "what"] and len(shown) == 20
    assert shown["day"].iloc[0] == "2026-09-01" and shown["what"].str.len().max() <= 20
