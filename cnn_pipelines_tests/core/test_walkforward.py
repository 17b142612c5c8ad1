"""Walk-forward folds at their boundaries: the purge, the validation slice and what counts as realized.

These are the dates that keep a test month's labels out of everything fitted for it; an off-by-one in any of
them is look-ahead that no accuracy test would notice."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.research.walkforward import fold_for, realization_dates, split_masks
from cnn_pipelines.trading.research.walkforward import test_mask as in_test_month
from cnn_pipelines.trading.settings import ResearchSettings

CAL = trading_calendar("synthetic")
RS = ResearchSettings(train_months=12, val_months=2, target="fwd_open_1d", embargo_days=4)
SESSIONS = CAL.sessions("2019-01-01", "2021-12-31")


def test_fold_dates_of_a_month():
    f = fold_for("2020-07-01", RS, CAL)
    assert (f.test_start, f.test_end) == (dt.date(2020, 7, 1), dt.date(2020, 7, 31))
    assert f.train_start == dt.date(2019, 7, 1) and f.val_start == dt.date(2020, 5, 1)
    # purge = horizon 2 (next open to the open after) + embargo 4 = 6 sessions before July 1st; July 3rd and the
    # 4th holiday do not count, June has no holiday in the synthetic calendar
    assert RS.purge_days == 6
    assert f.cutoff == dt.date(2020, 6, 23)
    assert len(CAL.sessions(f.cutoff, dt.date(2020, 6, 30))) == 6
    assert f.period == "2020-07-01"


def test_a_period_must_start_a_month():
    with pytest.raises(ValueError, match="first day of a month"):
        fold_for("2020-07-02", RS, CAL)


def test_february_ends_on_its_last_day():
    assert fold_for("2020-02-01", RS, CAL).test_end == dt.date(2020, 2, 29)


def test_realization_is_the_horizon_th_session_after_the_date():
    days = pd.Series(pd.to_datetime(["2020-06-30", "2020-07-02", "2020-07-06"]))
    real = realization_dates(days, SESSIONS, 2)
    # July 4th 2020 is a Saturday (not observed on the Friday in the synthetic calendar)
    assert list(pd.to_datetime(real).date) == [dt.date(2020, 7, 2), dt.date(2020, 7, 6), dt.date(2020, 7, 8)]
    assert realization_dates(days, SESSIONS, 0)[0] == np.datetime64("2020-06-30")


def test_a_label_past_the_calendar_is_not_realized():
    last = SESSIONS[-1]
    days = pd.Series([SESSIONS[-3], SESSIONS[-2], last])
    real = realization_dates(days, SESSIONS, 2)
    assert real[0] == last.to_datetime64()
    assert np.isnat(real[1]) and np.isnat(real[2])


def test_split_masks_at_each_boundary():
    f = fold_for("2020-07-01", RS, CAL)
    h = RS.horizon
    d = lambda s: pd.Timestamp(s)  # noqa: E731
    # a sample realized on val_start itself belongs to neither side: train needs realization before it
    last_train = CAL.offset(f.val_start, -h - 1)      # realized the session before val_start
    too_late_for_train = CAL.offset(f.val_start, -h)  # realized on val_start
    last_val = CAL.offset(f.cutoff, -h)               # realized on the cutoff: purged
    before_last_val = CAL.offset(f.cutoff, -h - 1)    # realized the session before the cutoff
    dates = pd.Series([d(f.train_start) - pd.Timedelta(days=1), d(f.train_start), d(last_train),
                       d(too_late_for_train), d(f.val_start), d(before_last_val), d(last_val), d(f.test_start)])
    train, val = split_masks(dates, SESSIONS, f, h)
    assert train.tolist() == [False, True, True, False, False, False, False, False]
    assert val.tolist() == [False, False, False, False, True, True, False, False]


def test_unrealized_samples_are_never_fitted():
    f = fold_for("2021-12-01", RS, CAL)
    short = SESSIONS[SESSIONS <= pd.Timestamp("2021-11-05")]  # the calendar ends before most labels realize
    dates = pd.Series(pd.bdate_range("2021-09-01", "2021-11-05"))
    train, val = split_masks(dates, short, f, RS.horizon)
    real = realization_dates(dates, short, RS.horizon)
    assert not (train | val)[np.isnat(real)].any()


def test_test_mask_covers_the_month_inclusive():
    f = fold_for("2020-07-01", RS, CAL)
    dates = pd.Series(pd.to_datetime(["2020-06-30", "2020-07-01", "2020-07-31", "2020-08-03"]))
    assert in_test_month(dates, f).tolist() == [False, True, True, False]


@settings(max_examples=40, deadline=None)
@given(month=st.integers(0, 23), train=st.integers(3, 24), val=st.integers(1, 2), embargo=st.integers(0, 6),
       horizon=st.integers(1, 5))
def test_nothing_fitted_is_realized_on_or_after_the_cutoff(month, train, val, embargo, horizon):
    """Over generated settings: every training and validation label is realized before the cutoff, training
    labels before validation starts, and the cutoff lies purge_days sessions before the test month."""
    rs = ResearchSettings(train_months=train, val_months=val, embargo_days=embargo, target=f"fwd_{horizon}d")
    period = (pd.Timestamp("2020-01-01") + pd.DateOffset(months=month)).strftime("%Y-%m-%d")
    f = fold_for(period, rs, CAL)
    dates = pd.Series(SESSIONS[(SESSIONS >= pd.Timestamp(f.train_start) - pd.Timedelta(days=30))
                               & (SESSIONS <= pd.Timestamp(f.test_end))])
    train_m, val_m = split_masks(dates, SESSIONS, f, rs.horizon)
    real = pd.to_datetime(realization_dates(dates, SESSIONS, rs.horizon))
    assert (real[train_m] < pd.Timestamp(f.val_start)).all()
    assert (real[val_m] < pd.Timestamp(f.cutoff)).all()
    assert not (train_m & val_m).any() and not (train_m | val_m)[in_test_month(dates, f)].any()
    assert len(CAL.sessions(f.cutoff, f.test_start - dt.timedelta(days=1))) == rs.purge_days
    assert train_m.any() and val_m.any()
