"""The main job plans its own ranges: look-back, look-ahead, test periods whose training windows fit, and a
clear refusal (before any run) when the prices cannot support the plan."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.features.assets import LOOKAHEAD, SETTINGS
from cnn_pipelines.main import PlanError, month_complete_on, plan, unmet_models
from cnn_pipelines.trading.research.assets import FIRST_PERIOD, RS

KEYS = pd.bdate_range("2012-01-02", "2021-12-31").strftime("%Y-%m-%d").tolist()
COVER = (dt.date(2017, 1, 3), dt.date(2020, 9, 30))
_FIRST_PERIOD = dt.date.fromisoformat(FIRST_PERIOD)


def test_short_range_is_widened_so_every_test_period_has_its_training_window():
    p = plan(end="2020-07-31", days=300, periods=2, coverage=COVER, keys=KEYS)
    assert p.periods == ["2020-06-01", "2020-07-01"]
    # 12 months before 2020-06 begins on Saturday 2019-06-01: the research window's first weekday partition is
    # the Friday whose window overlaps it (the plan once started on the Monday and feature_selection failed)
    assert p.start == "2019-05-31" and p.end == "2020-07-31"
    assert any("widened" in n for n in p.notes)
    i = KEYS.index(p.start)
    assert p.history == (KEYS[i - SETTINGS.price_lookback], KEYS[i - 1])
    j = KEYS.index(p.end)
    assert p.lookahead == (KEYS[j + 1], KEYS[j + LOOKAHEAD])  # labels of the last days get realized
    jobs = [r[0] for r in p.runs()]
    assert jobs == ["price_history_job", "price_history_job", "trading_job", "research_job", "research_job",
                    "evaluation_job", "nightly_job", "vision_job"]


def test_start_sets_the_range_and_a_weekend_end_snaps_to_the_friday():
    p = plan(end="2020-08-01", start="2018-01-01", periods=1, coverage=COVER, keys=KEYS)
    assert (p.start, p.end) == ("2018-01-01", "2020-07-31") and p.periods == ["2020-07-01"]
    assert any("not a weekday" in n for n in p.notes)


def test_prices_that_start_too_late_are_refused_naming_what_is_missing():
    with pytest.raises(PlanError, match=r"prices start on 2019-09-02.*fewer --periods"):
        plan(end="2020-07-31", periods=2, coverage=(dt.date(2019, 9, 2), COVER[1]), keys=KEYS)


def test_an_end_after_the_prices_is_refused():
    with pytest.raises(PlanError, match=r"prices end on 2020-09-30, before --end 2021-01-29"):
        plan(end="2021-01-29", coverage=COVER, keys=KEYS)


def test_at_the_live_edge_there_is_no_look_ahead_and_the_plan_says_so():
    p = plan(end=None, periods=1, coverage=COVER, keys=KEYS)
    assert p.end == "2020-09-30" and p.lookahead is None
    assert any("unrealized" in n for n in p.notes)


def test_the_default_range_starts_where_the_prices_allow_and_errors_name_the_need():
    # --days 520 before 2018-07-31 reaches back to 2016; the prices start in 2017: the range starts later
    p = plan(end="2018-07-31", periods=1, coverage=COVER, keys=KEYS)
    assert p.start >= "2017-01-03" and p.periods == ["2018-07-01"]
    assert any("prices start on 2017-01-03" in n for n in p.notes)
    # six test months need training data from 2017-02 on: before the universe's history exists
    with pytest.raises(PlanError, match=r"the test periods 2018-02-01\.\.2018-07-01 train on the 12 months"):
        plan(end="2018-07-31", periods=6, coverage=COVER, keys=KEYS)


def test_asking_for_test_months_before_the_first_one_is_refused_not_silently_dropped():
    """An --end before the first research month's end once planned no test month at all, said nothing, and the
    summary then failed on a missing oos_predictions view: the plan names the first possible month instead."""
    first_end = month_complete_on(FIRST_PERIOD)
    before = (pd.Timestamp(first_end) - pd.offsets.BDay(1)).strftime("%Y-%m-%d")
    with pytest.raises(PlanError, match=rf"none is complete by --end {before}: the first test month is "
                                        rf"{FIRST_PERIOD}: .*Use --end {first_end} or later; or an earlier "
                                        rf"partitions_start"):
        plan(end=before, periods=2)
    assert plan(end=before, periods=0).periods == []  # features only is still a plan
    p = plan(end=first_end, periods=3)  # one month fits of three: planned, and said
    assert p.periods == [FIRST_PERIOD]
    assert any(n.startswith(f"only 1 of the 3 test months asked for are complete by --end {first_end}")
               for n in p.notes)


def test_a_month_is_complete_on_its_last_session_not_its_last_calendar_day(monkeypatch):
    """May 2020 ends on a Sunday: its test month is complete on Friday the 29th. On the NYSE calendar March 2024
    ends on Good Friday (a holiday): complete on Thursday the 28th, the last day price files hold."""
    from dataclasses import replace

    import cnn_pipelines.main as main

    assert plan(end="2020-05-29", periods=1, coverage=COVER, keys=KEYS).periods == ["2020-05-01"]
    assert plan(end="2020-05-28", periods=1, coverage=COVER, keys=KEYS).periods == ["2020-04-01"]
    monkeypatch.setattr(main, "SETTINGS", replace(main.SETTINGS, calendar="XNYS"))
    assert month_complete_on("2024-03-01") == "2024-03-28"
    assert month_complete_on("2021-05-01") == "2021-05-28"  # Memorial Day, Monday the 31st


def test_a_refusal_gives_the_advice_that_can_help(monkeypatch):
    """Prices that end too early need newer prices, not a later --end; a first month fixed by the preset cannot
    move with the partitions; a first month not yet over is said to be so (the partitions then started less than
    about two and a half years ago, and the plan once failed with a TypeError on the missing first key)."""
    from dataclasses import replace

    import dagster as dg

    import cnn_pipelines.main as main

    first_end = month_complete_on(FIRST_PERIOD)
    short = (dt.date(2012, 1, 2), dt.date(2014, 3, 31))
    with pytest.raises(PlanError, match=rf"Use newer prices, through {first_end} at least \(they end on 2014-03-31\)"):
        plan(end="2014-03-31", periods=2, coverage=short, keys=KEYS)
    monkeypatch.setattr(main, "RS", replace(main.RS, first_period=FIRST_PERIOD))
    with pytest.raises(PlanError, match="the preset's first_period") as refused:
        plan(end="2014-03-31", periods=2, keys=KEYS)
    assert "partitions_start" not in str(refused.value)
    future = (pd.Timestamp.today() + pd.offsets.MonthBegin(1)).strftime("%Y-%m-01")
    monkeypatch.setattr(main, "research_partitions", dg.MonthlyPartitionsDefinition(start_date=future))
    with pytest.raises(PlanError, match=rf"first test month is {future} \(complete on 20..-..-..\)") as refused:
        plan(end="2020-07-31", periods=2, coverage=COVER, keys=KEYS)
    assert "or later" not in str(refused.value)


def test_the_summary_of_a_lake_without_predictions_says_so(tmp_path, monkeypatch):
    """--periods 0 (or a plan with no test month) leaves no oos_predictions: the summary says none yet."""
    from cnn_pipelines.main import summary
    from cnn_pipelines.storage import lake

    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "catalogs"))
    day = pd.Timestamp("2020-01-02")
    lake.write_partitions(tmp_path, "raw_prices", pd.DataFrame(
        {"date": [day, day], "ticker": ["AAA", "BBB"], "close": [1.0, 2.0], "volume": [10.0, 20.0]}),
        ["2020-01-02"])
    lake.write_partitions(tmp_path, "indicator_panel", pd.DataFrame(
        {"date": [day], "ticker": ["AAA"], "rsi_5": [50.0]}), ["2020-01-02"])
    t = RS.target
    lake.write_partitions(tmp_path, "forward_returns", pd.DataFrame(
        {"date": [day], "ticker": ["AAA"], t: [0.01], f"{t}_ok": [True]}), ["2020-01-02"])
    # Bloomberg-style tickers hold spaces: the printed signals separate names with commas, in order
    lake.write_partitions(tmp_path, "daily_signals", pd.DataFrame(
        {"date": [day] * 4, "trade_date": [day + pd.Timedelta(days=1)] * 4,
         "ticker": ["MSFT US EQUITY", "AAPL US EQUITY", "X US EQUITY", "IBM US EQUITY"],
         "side": ["long", "long", "short", "short"]}), ["2020-01-02"])
    lake.ensure_views(tmp_path, ["raw_prices", "indicator_panel", "forward_returns", "daily_signals"])
    text = summary(tmp_path)
    assert "raw_prices: 2 rows, 2 tickers" in text
    assert "oos_predictions (cnn_ta): none yet" in text
    assert "long AAPL US EQUITY, MSFT US EQUITY; short IBM US EQUITY, X US EQUITY" in text


def test_no_periods_means_no_research_runs():
    p = plan(end="2020-07-31", days=300, periods=0, coverage=COVER, keys=KEYS)
    assert p.periods == [] and not any(job in ("research_job", "evaluation_job") for job, *_ in p.runs())


@settings(max_examples=int(os.environ.get("CNN_PLAN_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(end=st.one_of(st.dates(dt.date(2014, 6, 1), dt.date(2021, 12, 31)),  # and ends soon after the first
                     st.integers(0, 700).map(lambda d: _FIRST_PERIOD + dt.timedelta(days=d))),  # test month
       days=st.integers(20, 900),
       start_back=st.one_of(st.none(), st.integers(10, 1500)), periods=st.integers(0, 4),
       first=st.one_of(st.just(dt.date(2012, 1, 2)), st.dates(dt.date(2012, 1, 2), dt.date(2019, 12, 31))),
       span=st.one_of(st.just(4000), st.integers(30, 4000)))
def test_a_plan_either_has_every_input_or_is_refused_before_any_run(end, days, start_back, periods, first, span):
    """Over generated --end, --start/--days, --periods and price coverage: the plan's runs find every partition
    their assets' own mappings ask for (built by an earlier run of the plan), or the plan is refused with a
    message naming the limit. The planner once widened the range to a Monday while feature_selection read the
    Friday before it (a month starting on a weekend), and the run failed halfway."""
    from cnn_pipelines.definitions import defs
    from cnn_pipelines.plan_inputs import unmet_inputs

    coverage = (first, min(first + dt.timedelta(days=span), dt.date(2022, 6, 30)))
    start = str(end - dt.timedelta(days=start_back)) if start_back else None
    try:
        p = plan(end=str(end), days=days, start=start, periods=periods, coverage=coverage)
    except PlanError as exc:
        assert any(word in str(exc) for word in ("prices", "partition", "--start", "--end")), str(exc)
        return
    p.vision = False
    assert unmet_inputs(p.runs(), defs) == []
    assert unmet_models(p.periods, Path("/nonexistent-lake")) == []
    assert p.start <= p.end
    # test months asked for are planned, or the shortfall is said (never silently none)
    assert not periods or (p.periods and (len(p.periods) >= periods or any("test months asked" in n for n in p.notes)))


def test_plans_hold_under_the_full_preset_with_a_retrain_cadence():
    """The same property with the full preset (other windows and training months) and retrain_every=3: a
    test month between retrains needs its retrain month's model, which the plan once left out (the run
    failed on the second month with "materialize research_job for ... first")."""
    if os.environ.get("CNN_PRESET") == "full":
        pytest.skip("already running under the full preset")
    env = {**os.environ, "CNN_PRESET": "full", "CNN_RETRAIN_EVERY": "3", "CNN_PLAN_EXAMPLES": "25"}
    test = f"{__file__}::test_a_plan_either_has_every_input_or_is_refused_before_any_run"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging", test],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_a_retrain_cadence_widens_the_periods_back_to_the_retrain_month(monkeypatch):
    """With retrain_every=3 the oldest test month's model is the one fitted for its retrain month: the plan
    runs that month too, and says so."""
    from dataclasses import replace

    import cnn_pipelines.main as main
    import cnn_pipelines.trading.research.assets as research

    rs = replace(research.RS, retrain_every=3)
    monkeypatch.setattr(research, "RS", rs)
    monkeypatch.setattr(main, "RS", rs)
    p = plan(end="2020-07-31", days=300, periods=2, keys=KEYS, coverage=COVER)
    anchors = {research.retrain_plan(k)[0] for k in p.periods}
    assert anchors <= set(p.periods) and p.periods[-2:] == ["2020-06-01", "2020-07-01"]
    assert research.retrain_plan(p.periods[0])[0] == p.periods[0]
    between = next(k for k in ("2020-06-01", "2020-07-01") if research.retrain_plan(k)[0] != k)
    assert len(p.periods) > 2 and any("retrain_every=3" in n for n in p.notes)
    assert main.unmet_models(p.periods, Path("/nonexistent-lake")) == []
    assert "neither the lake nor the plan" in main.unmet_models([between], Path("/nonexistent-lake"))[0]


def test_a_failed_run_names_its_failed_steps_on_the_quiet_terminal():
    """Issue 31: make run no longer prints Dagster's events, so a failed run must say what failed by itself."""
    import dagster as dg

    from cnn_pipelines.main import failure_lines
    from cnn_pipelines.storage.events import ephemeral_instance

    @dg.asset
    def prices_file():
        raise ValueError("vendor file prices.csv: 3 rows with a negative close (AAA 2024-01-02, ...)\nmore")

    instance = ephemeral_instance()
    result = dg.materialize([prices_file], instance=instance, raise_on_error=False)
    assert not result.success
    lines = failure_lines(instance, result.run_id)
    assert lines == ["  prices_file: ValueError: vendor file prices.csv: 3 rows with a negative close "
                     "(AAA 2024-01-02, ...)"]


def test_the_printed_leaderboard_is_rounded_with_units():
    """`make run`'s leaderboard: IC to 4 decimals with its sign, t and Sharpe to 2, bps to 1, fractions as
    percentages, n/a (not nan) where a model has no such figure."""
    import numpy as np
    import pandas as pd

    from cnn_pipelines.main import leaderboard_text

    board = pd.DataFrame({"rank": [1, 2], "model": ["cnn_ta", "ar_cnn"], "coverage": [1.0, 0.99381],
                          "mean_ic": [0.090812, 0.0102], "ic_t": [4.53171, 0.506], "monthly_ic": [np.nan, 0.05312],
                          "top_minus_bottom_bps": [76.1571, 7.18], "mean_daily_turnover": [1.5385, 0.16],
                          "net_sharpe": [6.0081, 0.7855]})
    text = leaderboard_text(board)
    header, first, second = text.splitlines()
    assert header.split() == ["rank", "model", "coverage", "IC", "t", "monthly", "IC", "bps/day", "turnover/day",
                              "net", "Sharpe"]
    assert first.split() == ["1", "cnn_ta", "100.0%", "+0.0908", "4.53", "n/a", "76.2", "154%", "6.01"]
    assert second.split() == ["2", "ar_cnn", "99.4%", "+0.0102", "0.51", "+0.0531", "7.2", "16%", "0.79"]
    assert "nan" not in text.lower().replace("n/a", "")


def test_the_printed_transfer_lines_average_seeds_and_read_a_lake_from_before_seeds(tmp_path, monkeypatch):
    """make run's transfer lines: per label count the mean over seeds of each method; a chain whose rows were
    written before the curve had seeds and a fine-tuned line prints n/a for it, and a lake with no seed column
    at all still prints (one seed), instead of failing the summary."""
    from cnn_pipelines.main import evaluation_summary
    from cnn_pipelines.storage import lake

    monkeypatch.setenv("CNN_LAKE_CATALOG_DIR", str(tmp_path / "catalogs"))
    old = pd.DataFrame({"requested": [100, 100], "labelled_images": [100, 100], "method": ["transfer", "scratch"],
                        "test_accuracy": [0.8, 0.7], "default_config": [False, False]})
    lake.write_table(tmp_path, "transfer_learning_curve", old.assign(chain="old_chain"), key="old_chain",
                     column="chain")
    lake.ensure_views(tmp_path, ["transfer_learning_curve"])
    assert "transfer old_chain: 100 labelled images: head on transferred features 80.00%, fine-tuned n/a, same " \
           "network from scratch 70.00% (demo settings: 2 label counts, 200+ steps each, one seed)" \
           in evaluation_summary(tmp_path)
    new = pd.DataFrame([{"requested": 50, "seed": s, "labelled_images": 50, "method": m, "test_accuracy": a,
                         "default_config": True}
                        for s, (t, f, sc) in enumerate([(0.8, 0.82, 0.6), (0.9, 0.88, 0.7)])
                        for m, a in (("transfer", t), ("fine_tuned", f), ("scratch", sc))])
    lake.write_table(tmp_path, "transfer_learning_curve", new.assign(chain="new_chain"), key="new_chain",
                     column="chain")
    text = evaluation_summary(tmp_path)
    assert "transfer new_chain: 50 labelled images: head on transferred features 85.00%, fine-tuned 85.00%, same " \
           "network from scratch 65.00% (full offline data, mean of 2 seeds)" in text
    assert "fine-tuned n/a" in text  # the old chain's rows are read beside the new ones


def test_price_files_with_no_readable_bar_stop_the_plan_naming_why(tmp_path, monkeypatch):
    """A folder of Kaggle's ``aapl.us.txt`` files, or of files none of which reads, once planned a range from
    nothing and launched a run that failed inside raw_prices. The plan now stops first, saying what to change."""
    import cnn_pipelines.main as main

    (tmp_path / "aapl.us.txt").write_text("Date,Open,High,Low,Close,Volume,OpenInt\n2021-01-04,1,1,1,1,10,0\n")
    monkeypatch.setenv("CNN_PRICE_SOURCE", "files")
    monkeypatch.setenv("CNN_PRICE_FILES", str(tmp_path))
    monkeypatch.setattr(main, "prepare_instance", lambda: pytest.fail("a run was prepared"))
    with pytest.raises(PlanError, match=r"1 \.txt file.*glob such as '.*\*\.txt'"):
        main.main(["--end", "2021-01-04", "--no-vision"])
    (tmp_path / "prices.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PlanError, match=r"no file at .* holds a readable bar: .*prices\.csv: missing column"):
        main.main(["--end", "2021-01-04", "--no-vision"])


@pytest.mark.parametrize("tickers", [["AAA"], ["AAA", "^GSPC"], ["AAA", "BBB"], ["AAA", "BBB", "CCC"]])
def test_price_files_with_fewer_than_three_tradable_tickers_stop_the_plan(tmp_path, monkeypatch, tickers):
    """A one-ticker folder built its prices and features, then failed in research (the epoch is chosen by a daily
    rank IC across names). The plan stops first, naming the tickers; --periods 0 still builds the features."""
    import cnn_pipelines.main as main

    class Prepared(Exception):
        pass

    days = pd.bdate_range("2021-01-04", periods=20).strftime("%Y-%m-%d")
    pd.concat([pd.DataFrame({"date": days, "ticker": t, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
                             "volume": 1e6}) for t in tickers]).to_csv(tmp_path / "prices.csv", index=False)
    monkeypatch.setenv("CNN_PRICE_SOURCE", "files")
    monkeypatch.setenv("CNN_PRICE_FILES", str(tmp_path))

    def prepared():
        raise Prepared

    monkeypatch.setattr(main, "prepare_instance", prepared)
    tradable = [t for t in tickers if not t.startswith("^")]
    if len(tradable) < 3:
        with pytest.raises(PlanError, match=rf"hold {len(tradable)} tradable ticker\(s\) \({', '.join(tradable)}\)"):
            main.main(["--end", "2021-01-29", "--days", "5", "--periods", "1", "--no-vision"])
    with pytest.raises((Prepared, PlanError)) as got:  # past this check: planned, or refused for another reason
        main.main(["--end", "2021-01-29", "--days", "5", "--periods", "0" if len(tradable) < 3 else "1",
                   "--no-vision"])
    assert "tradable ticker" not in str(got.value)
