"""Daily factor returns (from a Fama-French CSV or built from the universe) and rolling factor betas.

Offline factors are long-short equal-weighted tercile portfolios of the day's universe members, each sorted
on a signal known at the previous close (point in time):

MKT   equal-weighted member return
SIZE  small minus big trailing median dollar volume (the universe's own ranking variable)
MOM   winners minus losers on the return from t-6-F to t-6 (F = formation days, skipping the last 5)
STR   losers minus winners on the return from t-6 to t-1 (short-term reversal)
LVOL  low minus high volatility of daily returns over the F days ending t-1
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.trading.features.wide import shift

OFFLINE_FACTORS = ("MKT", "SIZE", "MOM", "STR", "LVOL")
FF_FACTORS = ("Mkt-RF", "SMB", "HML", "RMW", "CMA")


def daily_returns(close: np.ndarray, has_bar: np.ndarray) -> np.ndarray:
    """Close-to-close return, observed only where both days have a real bar (gap days are NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = close / shift(close, 1) - 1
    ok = has_bar & np.vstack([np.zeros((1, has_bar.shape[1]), bool), has_bar[:-1]])
    return np.where(ok, r, np.nan)


def long_short(returns: np.ndarray, signal: np.ndarray, eligible: np.ndarray, min_names: int = 6) -> np.ndarray:
    """Per row: mean return of the top signal tercile minus the bottom tercile among eligible names."""
    ok = eligible & np.isfinite(signal) & np.isfinite(returns)
    filled = np.where(ok, signal, np.inf)
    order = np.argsort(filled, axis=1, kind="stable")
    ranks = np.empty_like(order)
    T, N = signal.shape
    ranks[np.arange(T)[:, None], order] = np.arange(N)[None, :]
    k = ok.sum(axis=1, keepdims=True)
    third = k // 3
    low = ok & (ranks < third)
    high = ok & (ranks >= k - third)
    r0 = np.where(ok, returns, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (r0 * high).sum(1) / high.sum(1) - (r0 * low).sum(1) / low.sum(1)
    out[k[:, 0] < min_names] = np.nan
    return out


def universe_factors(close: np.ndarray, has_bar: np.ndarray, member: np.ndarray, dollar_volume: np.ndarray,
                     formation: int) -> np.ndarray:
    """T x 5 factor returns (OFFLINE_FACTORS order) from members and signals known at the previous close."""
    r = daily_returns(close, has_bar)
    eligible = member & np.isfinite(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        mkt = np.where(eligible, r, 0.0).sum(1) / eligible.sum(1)
        mom_sig = shift(close, 6) / shift(close, 6 + formation) - 1
        str_sig = shift(close, 1) / shift(close, 6) - 1
    vol = pd.DataFrame(r).rolling(formation, min_periods=max(10, formation // 2)).std().to_numpy()
    vol_sig = shift(vol, 1)
    mkt[eligible.sum(1) == 0] = np.nan
    return np.column_stack([
        mkt,
        -long_short(r, dollar_volume, eligible),   # small minus big
        long_short(r, mom_sig, eligible),          # winners minus losers
        -long_short(r, str_sig, eligible),         # losers minus winners
        -long_short(r, vol_sig, eligible),         # low minus high volatility
    ])


def read_fama_french_csv(path: str | Path) -> pd.DataFrame:
    """Parse a Ken French daily factor CSV (preamble lines, YYYYMMDD dates, percent values, footer).

    Returns decimal returns indexed by date with the five factor columns and RF; raises naming what is missing.
    """
    lines = Path(path).read_text().splitlines()
    header = next((i for i, line in enumerate(lines) if "Mkt-RF" in line), None)
    if header is None:
        raise ValueError(f"{path}: no header line with 'Mkt-RF' found")
    cols = [c.strip() for c in lines[header].split(",")]
    rows = []
    for line in lines[header + 1:]:
        parts = [p.strip() for p in line.split(",")]
        if not parts[0].isdigit() or len(parts[0]) != 8:
            break  # annual section or copyright footer
        rows.append(parts)
    if not rows:
        raise ValueError(f"{path}: no daily rows (YYYYMMDD) after the header")
    df = pd.DataFrame(rows, columns=["date", *cols[1:]])
    missing = [c for c in (*FF_FACTORS, "RF") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing factor column(s) {missing}; found {cols[1:]}")
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    out = df.set_index("date")[[*FF_FACTORS, "RF"]].astype(float) / 100.0
    return out


def rolling_betas(y: np.ndarray, factors: np.ndarray, windows: Iterable[int], min_frac: float = 0.8,
                  max_cond: float = 1e10) -> dict[int, np.ndarray]:
    """{w: T x N x K} OLS slopes for every window (see ``iter_rolling_betas``)."""
    return dict(iter_rolling_betas(y, factors, windows, min_frac, max_cond))


def iter_rolling_betas(y: np.ndarray, factors: np.ndarray, windows: Iterable[int], min_frac: float = 0.8,
                       max_cond: float = 1e10):
    """OLS slopes of y[:, i] on [1, factors] over trailing ``w``-row windows, for every (row, column).

    Rows where y or any factor is missing are left out of a window; a window needs at least
    ceil(min_frac * w) observations and a well-conditioned design, else NaN. Yields (w, T x N x K) per window.
    Full windows share one (X'X)^-1 per row; only windows with gaps solve their own system.
    """
    T, N = y.shape
    K = factors.shape[1]
    P = K + 1
    row_ok = np.isfinite(factors).all(axis=1)
    X = np.where(row_ok[:, None], np.column_stack([np.ones(T), np.nan_to_num(factors)]), 0.0)
    m = np.isfinite(y) & row_ok[:, None]
    y0 = np.where(m, y, 0.0)

    def rolled(cum: np.ndarray, w: int) -> np.ndarray:
        out = cum.copy()
        out[w:] -= cum[:-w]
        return out

    xx = X[:, :, None] * X[:, None, :]                         # T x P x P
    cxx = np.cumsum(xx, axis=0)
    cxy = np.cumsum(X[:, None, :] * y0[:, :, None], axis=0)    # T x N x P
    cnt = np.cumsum(m, axis=0)
    iu = np.triu_indices(P)
    cxx_cell = None                                            # T x N x P(P+1)/2, built only if needed
    for w in windows:
        need = int(np.ceil(min_frac * w))
        n_obs = rolled(cnt, w)
        n_obs[: w - 1] = np.minimum(n_obs[: w - 1], 0)  # incomplete leading windows never count as full
        sxy = rolled(cxy, w)
        full = n_obs == w
        sxx = rolled(cxx, w)
        inv, good_rows = _inverse_if_conditioned(sxx, max_cond)
        beta = np.matmul(sxy, inv[:, 1:, :].transpose(0, 2, 1))    # T x N x K slopes
        beta[~(full & good_rows[:, None])] = np.nan

        partial = (n_obs >= need) & ~full & good_rows[:, None]
        if partial.any():
            if cxx_cell is None:
                cxx_cell = np.cumsum(m[:, :, None] * xx[:, None, iu[0], iu[1]], axis=0)
            rows, cols = np.nonzero(partial)
            s = cxx_cell[rows, cols].copy()
            back = rows - w
            has_back = back >= 0
            s[has_back] -= cxx_cell[back[has_back], cols[has_back]]
            a = np.empty((len(rows), P, P))
            a[:, iu[0], iu[1]] = s
            a[:, iu[1], iu[0]] = s
            beta[rows, cols] = _solve_or_nan(a, sxy[rows, cols], max_cond)[:, 1:]
        yield w, beta


def _inverse_if_conditioned(a: np.ndarray, max_cond: float) -> tuple[np.ndarray, np.ndarray]:
    """Batched inverses and a mask of matrices whose 1-norm condition number is below ``max_cond``."""
    det_ok = np.abs(np.linalg.det(a)) > 0
    inv = np.zeros_like(a)
    inv[det_ok] = np.linalg.inv(a[det_ok])
    cond = np.abs(a).sum(axis=1).max(axis=1) * np.abs(inv).sum(axis=1).max(axis=1)
    good = det_ok & np.isfinite(cond) & (cond < max_cond)
    inv[~good] = 0.0
    return inv, good


def _solve_or_nan(a: np.ndarray, b: np.ndarray, max_cond: float) -> np.ndarray:
    """Batched solve of a @ x = b; systems that are singular or worse conditioned than ``max_cond`` give NaN.

    The condition number is only computed when the fast batched solve meets a singular system.
    """
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        cond = np.linalg.cond(a)
        ok = np.isfinite(cond) & (cond < max_cond)
        out = np.full(b.shape, np.nan)
        out[ok] = np.linalg.solve(a[ok], b[ok][..., None])[..., 0]
        return out
