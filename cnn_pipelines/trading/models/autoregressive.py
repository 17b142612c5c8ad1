"""Notebook 04's autoregressive CNN: a 1-D convolution over each ticker's most recent monthly returns (plus the
calendar month, one-hot) predicts the next month's return.

Point in time: the model for test month P is fitted only on samples whose target month ended on or before P's
cutoff (so every label was realized before the cutoff), from tickers in the universe at the sample's month end;
it predicts P from the returns up to the last month end before P, and the prediction is held for the month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ArSettings:
    lags: int = 12            # the book's inputs: the 12 most recent monthly returns (its text also uses 24)
    filters: int = 32
    kernel_size: int = 4
    dense: int = 16
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    clip: float = 0.5         # monthly returns beyond +-50 % are clipped as inputs and labels (data errors)


def month_end_closes(prices: pd.DataFrame) -> pd.DataFrame:
    """Each ticker's last close of every calendar month (index: that session's date, one row per month)."""
    px = prices[["date", "ticker", "close"]].copy()
    px["date"] = pd.to_datetime(px["date"])
    wide = px.pivot_table(index="date", columns="ticker", values="close").sort_index()
    last = wide.groupby(wide.index.to_period("M")).tail(1)  # the last session of the month on record
    return last.groupby(last.index.to_period("M")).last().rename_axis("month")


def monthly_returns(prices: pd.DataFrame, last_complete: pd.Period) -> pd.DataFrame:
    """Month-over-month close-to-close returns (period index), for months up to ``last_complete`` only: a
    month still in progress has no month-end close yet."""
    closes = month_end_closes(prices)
    closes = closes[closes.index <= last_complete]
    return closes.pct_change(fill_method=None).iloc[1:]


def samples(returns: pd.DataFrame, months: list[pd.Period], lags: int, clip: float,
            members: dict[pd.Period, set[str]] | None = None, with_target: bool = True):
    """(inputs n x lags x 1, month one-hot n x 12, target n, keys) for every (month t, ticker) with ``lags``
    returns up to t (and the return of t + 1 when ``with_target``), from the universe at t's end."""
    xs, ms, ys, keys = [], [], [], []
    r = returns.clip(-clip, clip)
    for t in months:
        if t not in r.index:
            continue
        i = r.index.get_loc(t)
        if i + 1 < lags or (with_target and (i + 1 >= len(r.index) or r.index[i + 1] != t + 1)):
            continue
        window = r.iloc[i + 1 - lags: i + 1]
        if window.index[0] != t - (lags - 1):  # a gap in the months on record
            continue
        ok = window.notna().all()
        if with_target:
            y = r.iloc[i + 1]
            ok &= y.notna()
        tickers = [c for c in r.columns[ok.to_numpy()] if members is None or c in members.get(t, set())]
        if not tickers:
            continue
        xs.append(window[tickers].to_numpy(np.float32).T[:, :, None])
        onehot = np.zeros((len(tickers), 12), np.float32)
        onehot[:, (t + 1).month - 1] = 1.0  # the month being predicted
        ms.append(onehot)
        ys.append(r.iloc[i + 1][tickers].to_numpy(np.float32) if with_target else np.full(len(tickers), np.nan, np.float32))
        keys += [(t, c) for c in tickers]
    if not xs:
        return (np.zeros((0, lags, 1), np.float32), np.zeros((0, 12), np.float32), np.zeros(0, np.float32), [])
    return np.concatenate(xs), np.concatenate(ms), np.concatenate(ys), keys


def training_months(cutoff, train_months: int) -> list[pd.Period]:
    """Feature months t whose target month t + 1 ended on or before the cutoff, the newest ``train_months``."""
    cut = pd.Period(pd.Timestamp(cutoff), "M")
    last_target = cut if pd.Timestamp(cutoff) >= (pd.Timestamp(cutoff) + pd.offsets.MonthEnd(0)) else cut - 1
    newest_t = last_target - 1
    return [newest_t - k for k in range(train_months - 1, -1, -1)]


def month_end_members(universe: pd.DataFrame) -> dict[pd.Period, set[str]]:
    """The universe on the last date of each month it covers (point in time: the universe of that day)."""
    u = universe.assign(date=pd.to_datetime(universe["date"]))
    last = u.groupby(u["date"].dt.to_period("M"))["date"].transform("max")
    u = u[u["date"] == last]
    return {m: set(g["ticker"].astype(str)) for m, g in u.groupby(u["date"].dt.to_period("M"))}


@dataclass
class ArFold:
    train: tuple                 # x, month one-hot, y, keys: samples realized on or before the cutoff
    inputs: tuple                # x, month one-hot for the test month
    tickers: list[str]           # the order of ``inputs``
    months: list[pd.Period]      # the training feature months


def ar_fold(prices: pd.DataFrame, universe: pd.DataFrame, period: str, cutoff, train_months: int,
            s: ArSettings) -> ArFold:
    """Everything ar_cnn uses for test month ``period``: training samples from data on or before ``cutoff``,
    and the inputs for the month from data before it starts."""
    p = pd.Period(period, "M")
    cut = pd.Timestamp(cutoff)
    px_cut = prices[pd.to_datetime(prices["date"]) <= cut]
    members = month_end_members(universe[pd.to_datetime(universe["date"]) <= cut])
    months = training_months(cutoff, train_months)
    train = samples(monthly_returns(px_cut, months[-1] + 1), months, s.lags, s.clip, members)
    start = pd.Timestamp(p.start_time)
    px_now = prices[pd.to_datetime(prices["date"]) < start]
    now_members = month_end_members(universe[pd.to_datetime(universe["date"]) < start])
    x, m, _, keys = samples(monthly_returns(px_now, p - 1), [p - 1], s.lags, s.clip, now_members, with_target=False)
    return ArFold(train, (x, m), [k[1] for k in keys], months)


def build_ar_cnn(s: ArSettings, seed: int):
    """One Conv1D over the lags, flattened, joined with the month one-hot, a small dense layer, one output."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    series = keras.Input((s.lags, 1), name="returns")
    month = keras.Input((12,), name="month")
    x = layers.Conv1D(s.filters, s.kernel_size, activation="relu", padding="causal")(series)
    x = layers.Flatten()(x)
    x = layers.Concatenate()([x, month])
    x = layers.Dense(s.dense, activation="relu")(x)
    out = layers.Dense(1)(x)
    model = keras.Model([series, month], out, name="ar_cnn")
    model.compile(optimizer=keras.optimizers.Adam(s.learning_rate), loss="mse")
    return model


MIN_SAMPLES = 50  # (name, month) samples below which the network is not fitted


def too_few_samples(train) -> str:
    """Why ``train`` (x, month, y, keys) is too small to fit: its samples are names x months, so a watch list of
    three names has 36 in a 12-month window however much older history the prices hold."""
    x, keys = train[0], train[3]
    names, months, lags = len({k[1] for k in keys}), len({k[0] for k in keys}), x.shape[1]
    return (f"ar_cnn: only {len(keys)} training samples before the cutoff ({names} names over {months} months with "
            f"{lags} months of returns before them); it needs {MIN_SAMPLES}: a universe of more names, or older "
            f"prices where names lack the {lags} months of history")


def fit_ar(train, s: ArSettings, seed: int):
    """The model fitted on ``train`` (x, month, y) with labels demeaned per month (the cross-section, as IC
    measures it)."""
    x, m, y, keys = train
    if len(x) < MIN_SAMPLES:
        raise ValueError(too_few_samples(train))
    months = np.array([k[0].ordinal for k in keys])
    y = y - pd.Series(y).groupby(months).transform("mean").to_numpy(np.float32)
    model = build_ar_cnn(s, seed)
    model.fit([x, m], y, epochs=s.epochs, batch_size=s.batch_size, verbose=0, shuffle=True)
    return model


def predict_ar(model, inputs) -> np.ndarray:
    """Predictions for ``inputs`` (x, month)."""
    from cnn_pipelines.inference import predict_batches

    px, pm = inputs
    return predict_batches(model, [px, pm]).ravel().astype(np.float32) if len(px) else np.zeros(0, np.float32)


def fit_predict(train, predict_inputs, s: ArSettings, seed: int) -> np.ndarray:
    """Fit on ``train`` and predict ``predict_inputs`` (``fit_ar`` then ``predict_ar``)."""
    return predict_ar(fit_ar(train, s, seed), predict_inputs)
