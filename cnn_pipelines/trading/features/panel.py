"""Pure functions behind the feature assets: universe, 300-column indicator panel, forward-return targets.

Each takes the canonical long price table covering the output dates plus enough history (the assets'
partition mappings provide it) and returns long tables for the requested output dates only.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.features.factors import (
    FF_FACTORS, OFFLINE_FACTORS, daily_returns, iter_rolling_betas, read_fama_french_csv, universe_factors,
)
from cnn_pipelines.trading.features.indicators import TECHNICAL_FAMILIES, feature_name, iter_technical_features
from cnn_pipelines.trading.settings import FeatureSettings
from cnn_pipelines.trading.features.universe import idle_names, is_tradable, universe_membership
from cnn_pipelines.trading.features.wide import WideBars, shift, to_long, to_wide


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
                                            s.universe_window, s.universe_min_obs,
                                            tradable=is_tradable(bars.tickers, s.non_tradables))
    return Universe(member, rank, med)


def universe_table(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """(date, ticker, rank, median_dollar_volume) for each member on each date in [start, end].

    ``attrs["untraded"]`` maps each ticker kept out as idle (``idle_names``) to its idle days in the range, and
    ``attrs["no_volume_days"]`` counts the range's days on which no name reported volume, so the asset can say
    why."""
    if prices.empty:
        return empty_universe()
    bars = to_wide(prices)
    u = compute_universe(bars, s)
    rows_out = _out_rows(bars, start, end)[:, None]
    mask = u.member & rows_out
    out = to_long({"median_dollar_volume": u.dollar_volume}, bars.dates, bars.tickers, mask, dtype="float64")
    rows, cols = np.nonzero(mask)
    out.insert(2, "rank", u.rank[rows, cols].astype("int32"))
    idle, no_volumes = idle_names(u.dollar_volume, is_tradable(bars.tickers, s.non_tradables))
    idle_days = (idle & rows_out).sum(axis=0)
    out.attrs["untraded"] = {str(bars.tickers[j]): int(idle_days[j]) for j in np.flatnonzero(idle_days)}
    out.attrs["no_volume_days"] = int((no_volumes & rows_out & u.member.any(axis=1, keepdims=True)).sum())
    return out


def empty_universe() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string"),
                         "rank": pd.Series([], dtype="int32"), "median_dollar_volume": pd.Series([], dtype="float64")})


@functools.lru_cache(maxsize=4)
def _factor_file(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    return read_fama_french_csv(path)


def factor_file(path: str) -> pd.DataFrame:
    """The factor CSV, parsed once per version of the file (the coverage check and the betas both read it)."""
    st = os.stat(path)
    return _factor_file(str(path), st.st_mtime_ns, st.st_size)


def factor_returns(bars: WideBars, u: Universe, s: FeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """(T x 5 factor returns, T risk-free rate) aligned to ``bars.dates``."""
    if s.factors_csv:
        ff = factor_file(s.factors_csv).reindex(bars.dates)
        return ff[list(FF_FACTORS)].to_numpy(), ff["RF"].fillna(0.0).to_numpy()
    f = universe_factors(bars.close, bars.has_bar, u.member, u.dollar_volume, s.factor_formation)
    return f, np.zeros(len(bars.dates))


def iter_beta_features(bars: WideBars, u: Universe | None, s: FeatureSettings,
                       factors: tuple[np.ndarray, np.ndarray] | None = None):
    """Yield (name, T x N array) for the 5 factor betas x 15 windows, one window at a time. With a factor CSV,
    the betas of day t are those estimated through day t - ``factors_lag`` sessions: the last factor rows a
    reader could have had on t (built factors are known on their own day). ``factors``: the (factor returns,
    risk-free rate) of all names, when a caller computes betas for a shard of the tickers in ``bars``."""
    f, rf = factors if factors is not None else factor_returns(bars, u, s)
    y = daily_returns(bars.close, bars.has_bar) - rf[:, None]
    fams = beta_families(s)
    lag = s.factors_lag if s.factors_csv else 0
    for w, beta in iter_rolling_betas(y, f, s.beta_windows):
        for k, fam in enumerate(fams):
            yield feature_name(w, fam), shift(beta[:, :, k], lag) if lag else beta[:, :, k]


class FactorsMissingError(ValueError):
    """The factor CSV ends before the features being built need it."""


def check_factor_coverage(bars: WideBars, s: FeatureSettings, last_row: int) -> None:
    """Raise when the factor CSV does not reach the day the features of row ``last_row`` need (their date less
    ``factors_lag`` sessions): betas would be NaN, and images would show zeros the model never trained on."""
    if not s.factors_csv or last_row < 0:
        return
    need_row = last_row - s.factors_lag
    if need_row < 0:
        return
    need = bars.dates[need_row]
    last = factor_file(s.factors_csv).index.max()
    if last < need:
        raise FactorsMissingError(
            f"{s.factors_csv} ends on {last.date()}, but the features of {bars.dates[last_row].date()} need factors "
            f"through {need.date()} (published {s.factors_lag} sessions after their date, CNN_FACTORS_LAG): "
            f"download the newer file, or unset CNN_FACTORS_CSV to build the factors from the universe")


def beta_features(bars: WideBars, u: Universe, s: FeatureSettings) -> dict[str, np.ndarray]:
    return dict(iter_beta_features(bars, u, s))


def shard_bars(bars: WideBars, columns: np.ndarray) -> WideBars:
    """The bars of a subset of tickers (every date kept: indicators need each ticker's whole history)."""
    return WideBars(bars.dates, bars.tickers[columns], *(getattr(bars, f)[:, columns] for f in
                                                          ("open", "high", "low", "close", "volume", "has_bar")))


@dataclass
class PanelPlan:
    """The cross-sectional part of the panel, computed once from close and volume of all names: the universe,
    the output cells (member with a bar on a requested date), the factor returns, and the shards of tickers that
    have output cells. Everything per ticker is computed shard by shard from it (``shard_matrix``)."""

    bars: WideBars
    mask: np.ndarray
    factors: tuple[np.ndarray, np.ndarray]
    shards: list[np.ndarray]


def plan_panel(prices: pd.DataFrame, s: FeatureSettings, start, end) -> PanelPlan:
    bars = to_wide(prices)
    u = compute_universe(bars, s)
    mask = u.member & bars.has_bar & _out_rows(bars, start, end)[:, None]
    rows = np.nonzero(mask.any(axis=1))[0]
    check_factor_coverage(bars, s, int(rows.max()) if len(rows) else -1)
    needed = np.nonzero(mask.any(axis=0))[0]
    shards = [needed[i:i + s.shard_tickers] for i in range(0, len(needed), s.shard_tickers)]
    return PanelPlan(bars, mask, factor_returns(bars, u, s), shards)


def shard_matrix(plan: PanelPlan, columns: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """The 300 float32 features of one shard's output cells, in (date, ticker) order. Every indicator and beta
    of a ticker depends on its own bars and the shared factor returns only, so a shard's values are exactly
    those of the whole panel; peak memory grows with the shard, not the universe."""
    cols = feature_columns(s)
    bars, mask = shard_bars(plan.bars, columns), plan.mask[:, columns]
    # Each feature is copied into its float32 column as soon as it is computed, then released. Column-major,
    # so every copy is contiguous and a DataFrame wraps the matrix without another copy.
    matrix = np.empty((int(mask.sum()), len(cols)), dtype=np.float32, order="F")
    position = {c: j for j, c in enumerate(cols)}
    for name, arr in chain(iter_technical_features(bars.high, bars.low, bars.close, bars.volume, s.periods),
                           iter_beta_features(bars, None, s, plan.factors)):
        matrix[:, position[name]] = arr[mask]
    return matrix


def _long(matrix: np.ndarray, rows: np.ndarray, tick: np.ndarray, bars: WideBars, cols: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(matrix, columns=cols, copy=False)
    out.insert(0, "ticker", pd.array(np.asarray(bars.tickers)[tick], dtype="string"))
    out.insert(0, "date", bars.dates[rows].date)
    return out


def shard_frame(plan: PanelPlan, columns: np.ndarray, s: FeatureSettings) -> pd.DataFrame:
    """One shard's panel as a long table in (date, ticker) order."""
    rows, tick = np.nonzero(plan.mask[:, columns])
    return _long(shard_matrix(plan, columns, s), rows, columns[tick], plan.bars, feature_columns(s))


def iter_panel_shards(prices: pd.DataFrame, s: FeatureSettings, start, end):
    """Yield the panel of ``indicator_panel_table`` as one long table per shard of ``s.shard_tickers`` tickers
    (each in (date, ticker) order), for a writer that stores each and lets it go."""
    if prices.empty:
        return
    plan = plan_panel(prices, s, start, end)
    for columns in plan.shards:
        yield shard_frame(plan, columns, s)


def indicator_panel_table(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """The 300 float32 features for every universe member with a bar on each date in [start, end], in one
    table (computed shard by shard, see ``shard_matrix``)."""
    cols = feature_columns(s)
    if prices.empty:
        return empty_panel(cols)
    plan = plan_panel(prices, s, start, end)
    rows, tick = np.nonzero(plan.mask)
    matrix = np.empty((len(rows), len(cols)), dtype=np.float32, order="F")
    for columns in plan.shards:
        matrix[np.isin(tick, columns)] = shard_matrix(plan, columns, s)
    return _long(matrix, rows, tick, plan.bars, cols)


def empty_panel(cols: list[str]) -> pd.DataFrame:
    data = {"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string")}
    data.update({c: pd.Series([], dtype="float32") for c in cols})
    return pd.DataFrame(data)


def target_columns(s: FeatureSettings) -> list[str]:
    """The forward-return columns: open-to-open (tradable) and close-to-close (the book's) per horizon."""
    return [name for h in s.horizons for name in (f"fwd_open_{h}d", f"fwd_{h}d")]


def _on_sessions(a: np.ndarray, rows: np.ndarray, n: int, fill) -> np.ndarray:
    out = np.full((n, a.shape[1]), fill, dtype=a.dtype)
    out[rows] = a
    return out


def forward_returns_table(prices: pd.DataFrame, s: FeatureSettings, start, end) -> pd.DataFrame:
    """Forward returns over each horizon h, counted in sessions of the settings' trading calendar:

    * ``fwd_open_{h}d`` = open[t+1+h] / open[t+1] - 1: what a signal known at the close of t can trade (in at
      the next open, out at the open h sessions later);
    * ``fwd_{h}d`` = close[t+h] / close[t] - 1: the book's close-to-close label.

    A return exists only where both ends are real bars (a bar filled over a gap is no trade), so it is NaN
    until realized, over a missing bar, and after a delisting. ``<col>_ok`` marks labels fit to train on: False
    where a one-day move inside the label's span exceeds ``max_abs_daily_return`` in log terms (+50 % / -33 %
    with 0.5, a fixed data-error rule). Evaluation scores every realized label; only training uses ``_ok``.
    ``<col>_decile`` (1..10, 0 = none) ranks the trainable labels of the day's universe members.
    """
    if prices.empty:
        return empty_targets(s)
    bars = to_wide(prices)
    u = compute_universe(bars, s)
    # Horizons count exchange sessions, also those on which none of these tickers has a bar.
    sessions = trading_calendar(s.calendar).sessions(bars.dates[0], bars.dates[-1]).union(bars.dates)
    at = sessions.get_indexer(bars.dates)
    n = len(sessions)
    has = _on_sessions(bars.has_bar, at, n, False)
    close = np.where(has, _on_sessions(bars.close, at, n, np.nan), np.nan)
    opens = np.where(has, _on_sessions(bars.open, at, n, np.nan), np.nan)
    r1 = daily_returns(close, has)
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = np.abs(np.nan_to_num(np.log1p(r1))) > np.log1p(s.max_abs_daily_return)
    mask = u.member & bars.has_bar & _out_rows(bars, start, end)[:, None]
    rows, cols = np.nonzero(mask)
    out = to_long({}, bars.dates, bars.tickers, mask)
    flags = {}
    for h in s.horizons:
        for name, px, first in ((f"fwd_open_{h}d", opens, 1), (f"fwd_{h}d", close, 0)):
            lag = first + h  # sessions from the label's date to its exit
            with np.errstate(divide="ignore", invalid="ignore"):
                fwd = shift(px, -lag) / shift(px, -first) - 1
            bad = np.zeros_like(jump)
            for k in range(1, lag + 1):
                bad |= shift(jump.astype(float), -k) == 1.0
            fwd, bad = fwd[at], bad[at]
            ok = np.isfinite(fwd) & ~bad & mask
            ranked = pd.DataFrame(np.where(ok, fwd, np.nan)).rank(axis=1, pct=True, method="first").to_numpy()
            out[name] = fwd[rows, cols].astype("float32")
            flags[f"{name}_ok"] = ok[rows, cols]
            flags[f"{name}_decile"] = np.where(ok, np.ceil(ranked * 10), 0)[rows, cols].astype("int8")
    for name in target_columns(s):
        out[f"{name}_ok"] = flags[f"{name}_ok"]
        out[f"{name}_decile"] = flags[f"{name}_decile"]
    return out


def empty_targets(s: FeatureSettings) -> pd.DataFrame:
    data = {"date": pd.Series([], dtype=object), "ticker": pd.Series([], dtype="string")}
    for name in target_columns(s):
        data[name] = pd.Series([], dtype="float32")
    for name in target_columns(s):
        data[f"{name}_ok"] = pd.Series([], dtype=bool)
        data[f"{name}_decile"] = pd.Series([], dtype="int8")
    return pd.DataFrame(data)
