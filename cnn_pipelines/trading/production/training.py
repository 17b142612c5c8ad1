"""Nightly production: a model trained on the trailing window that ends at the partition date (labels only
where already realized by then), and ranked signals for the next trading day."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import TradingCalendar
from cnn_pipelines.trading.research.walkforward import Fold


# The models predict each name's cross-sectional z-score of the target (training labels are standardized per
# day), not a return: tables of signals say so.
SCORE_COLUMN = "predicted z"


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


SIGNAL_CHECKS = {
    "one_row_per_member": "Every name with features on the day has exactly one signal, and no other name has one",
    "balanced_book": "K longs and K shorts (K shrinks to half the names when fewer than 2K), every prediction "
                     "finite, and every long predicted above every short",
    "next_session": "The signals trade on the first exchange session after the day: a session, with none "
                    "between (never a holiday or weekend)",
}


def signal_problems(signals: pd.DataFrame, day_rows: pd.DataFrame, k: int, day: str | dt.date,
                    calendar: TradingCalendar) -> dict[str, list[str]]:
    """What is wrong with ``day``'s ``signals`` (``rank_signals``' output) for ``day_rows`` (the names with
    features that day), per check in ``SIGNAL_CHECKS``: empty lists when nothing is. Problems name the tickers.
    The trade date is checked against ``calendar``'s sessions, not against the date the signals were given."""
    from cnn_pipelines.metadata import listed

    out: dict[str, list[str]] = {name: [] for name in SIGNAL_CHECKS}
    tickers = signals["ticker"].astype(str)
    members = set(day_rows["ticker"].astype(str))
    doubled = sorted(set(tickers[tickers.duplicated()]))
    if doubled:
        out["one_row_per_member"].append(f"{len(doubled)} name(s) with more than one signal: {listed(doubled)}")
    if missing := sorted(members - set(tickers)):
        out["one_row_per_member"].append(f"{len(missing)} name(s) with features but no signal: {listed(missing)}")
    if extra := sorted(set(tickers) - members):
        out["one_row_per_member"].append(f"{len(extra)} name(s) with a signal but no features: {listed(extra)}")
    n, want = len(signals), min(k, len(signals) // 2)
    longs, shorts = signals[signals["side"] == "long"], signals[signals["side"] == "short"]
    if (len(longs), len(shorts)) != (want, want):
        out["balanced_book"].append(f"{len(longs)} long and {len(shorts)} short, expected {want} each of {n} names")
    pred = signals["prediction"].astype(float)
    if bad := sorted(tickers[~np.isfinite(pred)]):
        out["balanced_book"].append(f"{len(bad)} prediction(s) not finite: {listed(bad)}")
    elif len(longs) and len(shorts) and longs["prediction"].min() < shorts["prediction"].max():
        crossed = sorted(set(longs.loc[longs["prediction"] < shorts["prediction"].max(), "ticker"].astype(str)))
        out["balanced_book"].append(f"long names predicted below a short one: {listed(crossed)}")
    after = pd.Timestamp(day) + pd.Timedelta(days=1)
    for trade in sorted({pd.Timestamp(d).date() for d in signals["trade_date"]}) if n else []:
        between = [s.date() for s in calendar.sessions(after.date(), trade)] if trade >= after.date() else []
        if between != [trade]:
            why = ("not after the day" if trade < after.date() else "not a session" if trade not in between
                   else f"sessions before it: {listed(between[:-1])}")
            out["next_session"].append(f"trade date {trade} for {pd.Timestamp(day).date()}: {why}")
    return out
