"""Nightly production: a model trained on the trailing window that ends at the partition date (labels only
where already realized by then), and ranked signals for the next trading day."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import TradingCalendar
from cnn_pipelines.trading.research.walkforward import Fold


def production_fold(day: str | dt.date, train_months: int, val_months: int, calendar: TradingCalendar) -> Fold:
    """Training window ending at ``day``: every label must be realized on or before ``day``."""
    d = pd.Timestamp(day)
    nxt = calendar.next_session(d)
    return Fold(period=d.strftime("%Y-%m-%d"), test_start=nxt, test_end=nxt, cutoff=(d + pd.Timedelta(days=1)).date(),
                train_start=(d - pd.DateOffset(months=train_months)).date(),
                val_start=(d - pd.DateOffset(months=val_months)).date())


def rank_signals(day_rows: pd.DataFrame, prediction: np.ndarray, k: int, next_day: dt.date) -> pd.DataFrame:
    """Ranked predictions with long/short flags for the next trading day (1 = highest prediction).

    With fewer than 2k names, k shrinks to half of them, so both books stay equally sized (as in the
    backtest)."""
    out = day_rows[["date", "ticker"]].copy().reset_index(drop=True)
    out["prediction"] = prediction.astype(np.float32)
    out["rank"] = out["prediction"].rank(ascending=False, method="first").astype("int32")
    n = len(out)
    k = min(k, n // 2)
    out["side"] = np.where(out["rank"] <= k, "long", np.where(out["rank"] > n - k, "short", "none"))
    out["trade_date"] = next_day
    return out.sort_values("rank").reset_index(drop=True)
