"""Pure functions behind the feature assets: universe, 300-column indicator panel, forward-return targets.

Each takes the canonical long price table covering the output dates plus enough history (the assets'
partition mappings provide it) and returns long tables for the requested output dates only.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd

from cnn_pipelines.factors import (
    FF_FACTORS, OFFLINE_FACTORS, daily_returns, iter_rolling_betas, read_fama_french_csv, universe_factors,
)
from cnn_pipelines.indicators import TECHNICAL_FAMILIES, feature_name, iter_technical_features
from cnn_pipelines.settings import FeatureSettings
from cnn_pipelines.universe import universe_membership
from cnn_pipelines.wide import WideBars, shift, to_long, to_wide


def beta_families(settings: FeatureSettings) -> tuple[str, ...]:
    names = FF_FACTORS if settings.factors_csv else OFFLINE_FACTORS
    return tuple("BETA_" + n.replace("Mkt-RF", "MKT").upper() for n in names)


def families(settings: FeatureSettings) -> tuple[str, ...]:
    """The 20 feature families: 15 technical + 5 factor betas."""
    return TECHNICAL_FAMILIES + beta_families(settings)


def feature_columns(settings: FeatureSettings) -> list[str]:
    """The 300 column names, family by family (``06_RSI`` ... ``85_BETA_LVOL``)."""
    cols = [feature_name(t, f) for f in TECHNICAL_FAMILIES for t in settings.periods]
    cols += [feature_name(w, f) for f in beta_families(settings) for w in settings.beta_windows]
    return cols


def family_of(column: str) -> str:
    return column.split("_", 1)[1]


def _out_rows(bars: WideBars, start, end) -> np.ndarray:
    d = bars.dates
    return (d >= pd.Timestamp(start)) & (d <= pd.Timestamp(end))


@dataclass
class Universe:
    member: np.ndarray
    rank: np.ndarray
    dollar_volume: np.ndarray


def compute_universe(bars: WideBars, s: FeatureSettings) -> Universe:
    member, rank, med = universe_membership(bars.close, bars.volume, bars.has_bar, s.universe_size,
                                            s.universe_window, s.universe_min_obs)
    return Universe(member, rank, med)


def universe_table(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """(date, ticker, rank, median_dollar_volume) for each member on each date in [start, end]."""
    if prices.empty:
        return empty_universe()
    bars = to_wide(prices)
    u = compute_universe(bars, s)
    mask = u.member & _out_rows(bars, start, end)[:, None]
    out = to_long({"median_dollar_volume": u.dollar_volume}, bars.dates, bars.tickers, mask, dtype="float64")
    rows, cols = np.nonzero(mask)
    out.insert(2, "rank", u.rank[rows, cols].astype("int32"))
    return out


def empty_universe() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string"),
                         "rank": pd.Series([], dtype="int32"), "median_dollar_volume": pd.Series([], dtype="float64")})


def factor_returns(bars: WideBars, u: Universe, s: FeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """(T x 5 factor returns, T risk-free rate) aligned to ``bars.dates``."""
    if s.factors_csv:
        ff = read_fama_french_csv(s.factors_csv).reindex(bars.dates)
        return ff[list(FF_FACTORS)].to_numpy(), ff["RF"].fillna(0.0).to_numpy()
    f = universe_factors(bars.close, bars.has_bar, u.member, u.dollar_volume, s.factor_formation)
    return f, np.zeros(len(bars.dates))


def iter_beta_features(bars: WideBars, u: Universe, s: FeatureSettings):
    """Yield (name, T x N array) for the 5 factor betas x 15 windows, one window at a time."""
    f, rf = factor_returns(bars, u, s)
    y = daily_returns(bars.close, bars.has_bar) - rf[:, None]
    fams = beta_families(s)
    for w, beta in iter_rolling_betas(y, f, s.beta_windows):
        for k, fam in enumerate(fams):
            yield feature_name(w, fam), beta[:, :, k]


def beta_features(bars: WideBars, u: Universe, s: FeatureSettings) -> dict[str, np.ndarray]:
    return dict(iter_beta_features(bars, u, s))


def indicator_panel_table(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """The 300 float32 features for every universe member with a bar on each date in [start, end]."""
    cols = feature_columns(s)
    if prices.empty:
        return empty_panel(cols)
    bars = to_wide(prices)
    u = compute_universe(bars, s)
    mask = u.member & bars.has_bar & _out_rows(bars, start, end)[:, None]
    rows, tick = np.nonzero(mask)
    # Each feature is copied into its float32 column as soon as it is computed, then released. Column-major,
    # so every copy is contiguous and the DataFrame wraps the matrix without another copy.
    matrix = np.empty((len(rows), len(cols)), dtype=np.float32, order="F")
    position = {c: j for j, c in enumerate(cols)}
    for name, arr in chain(iter_technical_features(bars.high, bars.low, bars.close, bars.volume, s.periods),
                           iter_beta_features(bars, u, s)):
        matrix[:, position[name]] = arr[mask]
    out = pd.DataFrame(matrix, columns=cols, copy=False)
    out.insert(0, "ticker", pd.array(np.asarray(bars.tickers)[tick], dtype="string"))
    out.insert(0, "date", bars.dates[rows].date)
    return out


def empty_panel(cols: list[str]) -> pd.DataFrame:
    data = {"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string")}
    data.update({c: pd.Series([], dtype="float32") for c in cols})
    return pd.DataFrame(data)


def forward_returns_table(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """Forward close-to-close returns over each horizon h, a data-error flag, and cross-sectional deciles.

    ``fwd_{h}d`` = close[t+h] / close[t] - 1 over trading days (NaN until realized). ``fwd_{h}d_ok`` is False
    where any one-day move in (t, t+h] exceeds ``max_abs_daily_return`` in log terms (with 0.5: up more
    than +50% or down more than -33%; a fixed rule known in advance, not a statistic of the sample); such rows keep their value but get no decile and must not be trained
    on. ``fwd_{h}d_decile`` (1..10) ranks the valid targets of the day's universe members.
    """
    if prices.empty:
        return empty_targets(s)
    bars = to_wide(prices)
    u = compute_universe(bars, s)
    c = bars.close
    r1 = daily_returns(c, bars.has_bar)
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = np.abs(np.nan_to_num(np.log1p(r1))) > np.log1p(s.max_abs_daily_return)
    mask = u.member & bars.has_bar & _out_rows(bars, start, end)[:, None]
    values: dict[str, np.ndarray] = {}
    for h in s.horizons:
        with np.errstate(divide="ignore", invalid="ignore"):
            fwd = shift(c, -h) / c - 1
        bad = np.zeros_like(jump)
        for k in range(1, h + 1):
            bad |= shift(jump.astype(float), -k) == 1.0
        ok = np.isfinite(fwd) & ~bad & mask
        ranked = pd.DataFrame(np.where(ok, fwd, np.nan)).rank(axis=1, pct=True, method="first").to_numpy()
        values[f"fwd_{h}d"] = fwd
        values[f"fwd_{h}d_ok"] = ok
        values[f"fwd_{h}d_decile"] = np.where(ok, np.ceil(ranked * 10), 0)
    out = to_long({k: v for k, v in values.items() if not k.endswith(("_ok", "_decile"))}, bars.dates, bars.tickers, mask,
                  dtype="float32")
    rows, cols = np.nonzero(mask)
    for h in s.horizons:
        out[f"fwd_{h}d_ok"] = values[f"fwd_{h}d_ok"][rows, cols]
        out[f"fwd_{h}d_decile"] = values[f"fwd_{h}d_decile"][rows, cols].astype("int8")
    return out


def empty_targets(s: FeatureSettings) -> pd.DataFrame:
    data = {"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string")}
    for h in s.horizons:
        data[f"fwd_{h}d"] = pd.Series([], dtype="float32")
    for h in s.horizons:
        data[f"fwd_{h}d_ok"] = pd.Series([], dtype=bool)
        data[f"fwd_{h}d_decile"] = pd.Series([], dtype="int8")
    return pd.DataFrame(data)
