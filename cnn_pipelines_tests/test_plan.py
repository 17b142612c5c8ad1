"""The main job plans its own ranges: look-back, look-ahead, test periods whose training windows fit, and a
clear refusal (before any run) when the prices cannot support the plan."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.features.assets import LOOKAHEAD, SETTINGS
from cnn_pipelines.main import PlanError, plan

KEYS = pd.bdate_range("2012-01-02", "2021-12-31").strftime("%Y-%m-%d").tolist()
COVER = (dt.date(2017, 1, 3), dt.date(2020, 9, 30))


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


def test_no_periods_means_no_research_runs():
    p = plan(end="2020-07-31", days=300, periods=0, coverage=COVER, keys=KEYS)
    assert p.periods == [] and not any(job in ("research_job", "evaluation_job") for job, *_ in p.runs())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(end=st.dates(dt.date(2014, 6, 1), dt.date(2021, 12, 31)), days=st.integers(20, 900),
       start_back=st.one_of(st.none(), st.integers(10, 1500)), periods=st.integers(0, 4),
       first=st.dates(dt.date(2012, 1, 2), dt.date(2019, 12, 31)), span=st.integers(30, 4000))
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
    assert p.start <= p.end
