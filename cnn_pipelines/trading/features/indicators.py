"""The 15 technical indicator families on wide (date x ticker) arrays, vectorized across tickers.

Definitions follow the ``ta`` library (RSI, Williams %R, Bollinger bands, PPO, MACD, WMA, EMA, CCI, ROC, ADX)
and TA-Lib's published formulas where ``ta`` has none (CMO, NATR, Chaikin A/D oscillator). Each column's
history starts at its first bar (as in a per-ticker computation) and, by the gap rule in ``wide.py``, has no
holes until its last bar. Families are made scale-free so they compare across stocks, using past data only:

=========  ==========================================================================================
RSI        ta RSIIndicator(close, t)
WILLR      ta WilliamsRIndicator(high, low, close, lbp=t)
BBH, BBL   ta BollingerBands(close, t, 2): (upper band - close) / close and (close - lower band) / close
NATR       TA-Lib NATR: 100 * ATR_t / close, ATR seeded with the mean true range, then Wilder smoothing
PPO        ta PercentagePriceOscillator(close, slow=26, fast=t).ppo()  (percent)
MACD       ta MACD(close, slow=26, fast=12, sign=t).macd_diff() / close  (book: z-scored over the full sample)
MOM        (close - close[t ago]) / close               (book: raw price difference)
WMA        ta WMAIndicator(close, t) / close - 1         (book: raw price level)
EMA        ta EMAIndicator(close, t) / close - 1         (book: raw price level)
CCI        ta CCIIndicator(high, low, close, t); 0 on a constant window (ta gives 0 or NaN by float rounding)
CMO        Chande's formula: 100 * (sum of up moves - sum of down moves) / (sum of both) over t days
ROC        ta ROCIndicator(close, t)  (percent)
ADOSC      TA-Lib ADOSC(fast=t-3, slow=t+4) / mean volume over the slow window  (book: raw share units)
ADX        ta ADXIndicator(high, low, close, t).adx(); NaN during its 2t-1 day warm-up (ta returns 0 there)
=========  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

from cnn_pipelines.trading.features.wide import shift

TECHNICAL_FAMILIES = ("RSI", "WILLR", "BBH", "BBL", "NATR", "PPO", "MACD", "MOM", "WMA", "EMA", "CCI", "CMO",
                      "ROC", "ADOSC", "ADX")


def feature_name(period: int, family: str) -> str:
    return f"{period:02d}_{family}"


# --------------------------------------------------------------------------------------------- primitives


def first_valid(x: np.ndarray) -> np.ndarray:
    """Row index of each column's first non-NaN value (T where none)."""
    valid = ~np.isnan(x)
    idx = valid.argmax(axis=0)
    idx[~valid.any(axis=0)] = x.shape[0]
    return idx


def windows(x: np.ndarray, n: int) -> np.ndarray:
    """(T, N, n) view of trailing windows; rows before the n-th are NaN-padded (so reduce to NaN)."""
    pad = np.full((n - 1, x.shape[1]), np.nan)
    return sliding_window_view(np.concatenate([pad, x]), n, axis=0)


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum over the trailing n rows; NaN if any is NaN or fewer than n rows exist (pandas min_periods=n).

    Adds lagged slices in place: contiguous memory, no temporaries, faster than a strided window view.
    """
    out = x.copy()
    for k in range(1, n):
        out[k:] += x[:-k]
    out[: n - 1] = np.nan
    return out


def _rolling_extreme(x: np.ndarray, n: int, op) -> np.ndarray:
    out = x.copy()
    for k in range(1, n):
        op(out[k:], x[:-k], out=out[k:])
    out[: n - 1] = np.nan
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling_extreme(x, n, np.maximum)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling_extreme(x, n, np.minimum)


def rolling_mean_dev(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, population std, mean absolute deviation) over the trailing n rows, two-pass.

    The mean is accumulated as deviations from the current value, so a constant window has exactly its
    value as mean and exactly zero deviation (as pandas' rolling mean/std guarantee for constant windows).
    """
    T = x.shape[0]
    dev = np.zeros_like(x)
    for k in range(1, n):
        dev[k:] += x[: T - k] - x[k:]
    dev[: n - 1] = np.nan
    mean = x + dev / n
    sq = np.zeros_like(x)
    ab = np.zeros_like(x)
    buf = np.empty_like(x)
    for k in range(n):
        d = buf[k:]
        np.subtract(x[: T - k], mean[k:], out=d)
        np.abs(d, out=d)
        ab[k:] += d
        np.multiply(d, d, out=d)  # |d|^2 = d^2
        sq[k:] += d
    return mean, np.sqrt(sq / n), ab / n


def seeded_filter(x: np.ndarray, decay: float, gain: float, seed_idx: np.ndarray, seed_val: np.ndarray) -> np.ndarray:
    """y[seed] = seed_val; y[t] = decay * y[t-1] + gain * x[t] after it; NaN before it (per column).

    One C-level linear filter over all columns instead of a Python loop over time.
    """
    T, N = x.shape
    t = np.arange(T)[:, None]
    before = t <= seed_idx[None, :]
    inp = x * gain if gain != 1.0 else x.copy()
    inp[before | np.isnan(inp)] = 0.0
    cols = np.nonzero(seed_idx < T)[0]
    inp[seed_idx[cols], cols] = seed_val[cols]
    y = lfilter([1.0], [1.0, -decay], inp, axis=0)
    y[before & (t < seed_idx[None, :])] = np.nan
    return y


def ewm(x: np.ndarray, alpha: float, min_periods: int) -> np.ndarray:
    """pandas ``ewm(alpha=alpha, adjust=False, min_periods=min_periods).mean()`` per column, seeded at each
    column's first value (columns have NaN only before their start)."""
    s = first_valid(x)
    cols = np.arange(x.shape[1])
    seed_val = x[np.minimum(s, x.shape[0] - 1), cols]
    y = seeded_filter(x, 1.0 - alpha, alpha, s, seed_val)
    y[np.arange(x.shape[0])[:, None] < (s + min_periods - 1)[None, :]] = np.nan
    return y


def wilder(x: np.ndarray, n: int, start: np.ndarray, gain: float, mean_seed: bool) -> np.ndarray:
    """Wilder smoothing seeded at row ``start + n - 1`` with the sum (or mean) of x[start .. start+n-1]."""
    T = x.shape[0]
    seed_idx = start + n - 1
    seed_all = rolling_sum(x, n)
    if mean_seed:
        seed_all = seed_all / n
    cols = np.arange(x.shape[1])
    seed_val = seed_all[np.minimum(seed_idx, T - 1), cols]
    return seeded_filter(x, 1.0 - 1.0 / n, gain, np.minimum(seed_idx, T), seed_val)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


# ------------------------------------------------------------------------------------------------ families


class TechnicalInputs:
    """Per-panel intermediate arrays shared by all look-back periods."""

    def __init__(self, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> None:
        self.h, self.l, self.c, self.v = high, low, close, volume
        self.start = first_valid(close)
        T = close.shape[0]
        self.age = np.arange(T)[:, None] - self.start[None, :]  # rows since the column's first bar
        prev = shift(close, 1)
        self.diff = close - prev
        nan_before = np.isnan(close)
        self.up = np.where(nan_before, np.nan, np.where(self.diff > 0, self.diff, 0.0))
        self.down = np.where(nan_before, np.nan, np.where(self.diff < 0, -self.diff, 0.0))
        self.tr = np.maximum(high, prev) - np.minimum(low, prev)
        du = high - shift(high, 1)
        dd = shift(low, 1) - low
        self.pos_dm = np.abs(((du > dd) & (du > 0)) * du)
        self.neg_dm = np.abs(((dd > du) & (dd > 0)) * dd)
        self.typical = (high + low + close) / 3.0
        rng = high - low
        clv = np.where(rng > 0, _div((close - low) - (high - close), rng), 0.0)
        flow = np.nan_to_num(clv * volume, nan=0.0)
        ad = np.cumsum(flow, axis=0)
        self.ad = np.where(nan_before, np.nan, ad)
        self._ema: dict[int, np.ndarray] = {}
        self._tr_sum: dict[int, np.ndarray] = {}
        self.ema12 = self.ema(12)
        self.ema26 = self.ema(26)
        self.macd_line = self.ema12 - self.ema26


    def ema(self, n: int) -> np.ndarray:
        """ta's EMA of close (span n, min_periods n), cached: EMA, PPO and MACD share them."""
        if n not in self._ema:
            self._ema[n] = ewm(self.c, 2 / (n + 1), n)
        return self._ema[n]


    def tr_sum(self, n: int) -> np.ndarray:
        """Wilder-smoothed sum of true range (seed: sum of the first n), shared by NATR and ADX."""
        if n not in self._tr_sum:
            self._tr_sum[n] = wilder(self.tr, n, self.start + 1, 1.0, mean_seed=False)
        return self._tr_sum[n]


def rsi(x: TechnicalInputs, n: int) -> np.ndarray:
    up, dn = ewm(x.up, 1 / n, n), ewm(x.down, 1 / n, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dn == 0, 100.0, 100 - 100 / (1 + up / dn))


def willr(x: TechnicalInputs, n: int) -> np.ndarray:
    hh, ll = rolling_max(x.h, n), rolling_min(x.l, n)
    return _div(-100 * (hh - x.c), hh - ll)


def bollinger(x: TechnicalInputs, n: int) -> tuple[np.ndarray, np.ndarray]:
    mavg, mstd, _ = rolling_mean_dev(x.c, n)
    return _div(mavg + 2 * mstd - x.c, x.c), _div(x.c - (mavg - 2 * mstd), x.c)


def natr(x: TechnicalInputs, n: int) -> np.ndarray:
    # TA-Lib ATR (mean-of-TR seed, then ATR = ((n-1) ATR + TR) / n) is exactly ADX's Wilder TR sum / n.
    atr = x.tr_sum(n) / n
    return _div(100 * atr, x.c)


def ppo(x: TechnicalInputs, n: int) -> np.ndarray:
    fast = x.ema(n)
    return _div(fast - x.ema26, x.ema26) * 100


def macd(x: TechnicalInputs, n: int) -> np.ndarray:
    signal = ewm(x.macd_line, 2 / (n + 1), n)
    return _div(x.macd_line - signal, x.c)


def mom(x: TechnicalInputs, n: int) -> np.ndarray:
    return _div(x.c - shift(x.c, n), x.c)


def wma(x: TechnicalInputs, n: int) -> np.ndarray:
    weights = np.arange(1, n + 1) * 2 / (n * (n + 1))
    return _div(windows(x.c, n) @ weights, x.c) - 1


def ema(x: TechnicalInputs, n: int) -> np.ndarray:
    return _div(x.ema(n), x.c) - 1


def cci(x: TechnicalInputs, n: int) -> np.ndarray:
    m, _, mad = rolling_mean_dev(x.typical, n)
    num = x.typical - m
    return np.where(num == 0, 0.0, _div(num, 0.015 * mad))  # no deviation -> 0 (ta/pandas convention)


def cmo(x: TechnicalInputs, n: int) -> np.ndarray:
    d = np.where(x.age >= 1, x.diff, np.nan)
    su = rolling_sum(np.maximum(d, 0.0), n)
    sd = rolling_sum(np.maximum(-d, 0.0), n)
    return _div(100 * (su - sd), su + sd)


def roc(x: TechnicalInputs, n: int) -> np.ndarray:
    past = shift(x.c, n)
    return _div(x.c - past, past) * 100


def adosc(x: TechnicalInputs, n: int) -> np.ndarray:
    fast, slow = n - 3, n + 4
    osc = ewm(x.ad, 2 / (fast + 1), 1) - ewm(x.ad, 2 / (slow + 1), 1)
    osc[x.age < slow - 1] = np.nan
    return _div(osc, rolling_sum(x.v, slow) / slow)


def adx(x: TechnicalInputs, n: int) -> np.ndarray:
    trs = x.tr_sum(n)
    dip = wilder(x.pos_dm, n, x.start + 1, 1.0, mean_seed=False)
    din = wilder(x.neg_dm, n, x.start + 1, 1.0, mean_seed=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        di_p = np.where(trs != 0, 100 * dip / trs, 0.0)
        di_n = np.where(trs != 0, 100 * din / trs, 0.0)
        dx = np.where(di_p + di_n != 0, 100 * np.abs((di_p - di_n) / (di_p + di_n)), 0.0)
    dx[np.isnan(trs)] = np.nan
    return wilder(dx, n, x.start + n, 1.0 / n, mean_seed=True)


def iter_technical_features(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                            periods: Iterable[int]):
    """Yield (name, float64 T x N array) for all 15 families x ``periods``, one at a time so a caller can
    store each (e.g. as float32 rows of the panel) and let it go: peak memory stays a few arrays."""
    x = TechnicalInputs(high, low, close, volume)
    listed = ~np.isnan(close)
    funcs = {"RSI": rsi, "WILLR": willr, "NATR": natr, "PPO": ppo, "MACD": macd, "MOM": mom, "WMA": wma,
             "EMA": ema, "CCI": cci, "CMO": cmo, "ROC": roc, "ADOSC": adosc, "ADX": adx}
    for n in periods:
        bands = bollinger(x, n)
        for name in TECHNICAL_FAMILIES:
            arr = bands[0] if name == "BBH" else bands[1] if name == "BBL" else funcs[name](x, n)
            arr[~listed] = np.nan
            yield feature_name(n, name), arr


def technical_features(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                       periods: Iterable[int]) -> dict[str, np.ndarray]:
    """All 15 families x ``periods`` as float64 (T x N) arrays named like ``06_RSI``."""
    return dict(iter_technical_features(high, low, close, volume, periods))
