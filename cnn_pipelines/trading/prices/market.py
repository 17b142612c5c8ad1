"""Seeded synthetic equity market: the offline default price source.

Model, per trading day t and ticker i (log returns):

    r[i, t+1] = mu[i, t] + beta[i] · f[t+1] + sqrt(h[i, t+1]) · z[i, t+1]

* ``f`` are 3 factor returns (market with GARCH(1,1) volatility, two style factors); ``z`` is Student-t(5)
  noise scaled to unit variance (fat tails); ``h`` follows a GARCH(1,1) per ticker (volatility clustering).
* ``mu[i, t]`` is the predictable component, known at the close of t from the price path only:
  ``mu = signal_strength * sqrt(h[i, t]) * score[i, t]`` where ``score`` is the cross-sectional z-score of
  ``0.6 * reversal + 0.3 * momentum - 0.1 * volatility_state``:
  reversal = -(5-day return) / (sigma·√5), momentum = (return from t-20 to t-5) / (sigma·√15),
  volatility state = log(h / long-run h). Tickers with fewer than 20 listed days have score 0.
  ``signal_strength = 0`` is the null market; ``expected_returns`` exposes ``mu`` for oracle ICs.
* Bars: open = previous close · exp(0.3 r + noise); high/low extend beyond max/min(open, close) by a
  half-normal amount; volume = dollar-volume level / price with lognormal noise rising with |z|.
* Tickers list at different dates and some delist; listed tickers miss a bar with probability
  ``missing_rate`` (data gaps); fixed-date holidays have no bars at all.

Every day's random draws come from a generator seeded by ``(seed, day index)``, and every recursion runs
forward from ``inception``, so a day's bars are identical whether it is simulated alone, in a range or
with the full history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import to_date, trading_days

PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class MarketConfig:
    """Everything that determines the synthetic market; equal configs give identical markets."""

    seed: int = 7
    n_tickers: int = 60
    inception: str = "2012-01-02"
    signal_strength: float = 0.10
    missing_rate: float = 0.002
    late_listing_share: float = 0.3
    delisting_share: float = 0.2
    listing_spread_days: int = 2520
    t_dof: float = 5.0

    def __post_init__(self) -> None:
        if self.n_tickers < 1:
            raise ValueError(f"n_tickers must be >= 1, got {self.n_tickers}")
        if self.signal_strength < 0:
            raise ValueError(f"signal_strength must be >= 0, got {self.signal_strength}")
        if not 0 <= self.missing_rate < 1:
            raise ValueError(f"missing_rate must be in [0, 1), got {self.missing_rate}")


@dataclass
class _Simulation:
    days: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    mu: np.ndarray  # expected log return from close t to close t+1, known at close t
    reported: np.ndarray  # bar exists (listed and not a data gap)
    listed: np.ndarray


def tickers(config: MarketConfig) -> list[str]:
    """Ticker names of the market, stable across sizes (SYN0000, SYN0001, ...)."""
    return [f"SYN{i:04d}" for i in range(config.n_tickers)]


def _static_draws(config: MarketConfig) -> dict[str, np.ndarray]:
    """Per-ticker constants; each ticker's come from its own generator so sizes nest."""
    n = config.n_tickers
    out = {k: np.empty(n) for k in ("beta_mkt", "beta_2", "beta_3", "sigma", "dollar_vol", "price0", "list_day", "delist_day")}
    for i in range(n):
        rng = np.random.default_rng([config.seed, 1_000_003, i])
        out["beta_mkt"][i] = rng.normal(1.0, 0.3)
        out["beta_2"][i] = rng.normal(0.0, 0.5)
        out["beta_3"][i] = rng.normal(0.0, 0.5)
        out["sigma"][i] = rng.uniform(0.25, 0.55) / np.sqrt(252)  # idiosyncratic daily vol
        out["dollar_vol"][i] = np.exp(rng.normal(16.0, 1.0))
        out["price0"][i] = np.exp(rng.normal(np.log(40.0), 0.6))
        late = rng.uniform() < config.late_listing_share
        out["list_day"][i] = rng.integers(1, config.listing_spread_days) if late else 0
        delists = rng.uniform() < config.delisting_share
        out["delist_day"][i] = (
            out["list_day"][i] + rng.integers(250, 2 * config.listing_spread_days) if delists else np.inf
        )
    return out


def _simulate(config: MarketConfig, n_days: int, days: pd.DatetimeIndex) -> _Simulation:
    n = config.n_tickers
    st = _static_draws(config)
    betas = np.stack([st["beta_mkt"], st["beta_2"], st["beta_3"]], axis=1)  # n x 3
    hbar = st["sigma"] ** 2
    a_idio, b_idio = 0.08, 0.90
    w_idio = hbar * (1 - a_idio - b_idio)
    mkt_hbar, a_mkt, b_mkt = (0.16 / np.sqrt(252)) ** 2, 0.10, 0.88
    style_sd = np.array([0.005, 0.004])
    t_scale = np.sqrt((config.t_dof - 2) / config.t_dof)
    drift = 0.0002

    shape = (n_days, n)
    o, hi, lo, c, v = (np.empty(shape) for _ in range(5))
    mu_all = np.zeros(shape)
    reported = np.zeros(shape, dtype=bool)
    day_idx = np.arange(n_days)[:, None]
    listed = (day_idx >= st["list_day"][None, :]) & (day_idx < st["delist_day"][None, :])

    logp = np.log(st["price0"])
    h = hbar.copy()
    g = mkt_hbar
    eps_prev = np.zeros(n)
    mkt_prev = 0.0
    hist = np.zeros((20, n))  # last 20 log returns, newest last
    mu = np.zeros(n)
    since_listed = np.zeros(n)
    for t in range(n_days):
        rng = np.random.default_rng([config.seed, t])
        zf = rng.standard_t(config.t_dof, size=3) * t_scale
        zi = rng.standard_t(config.t_dof, size=n) * t_scale
        zo, zh, zl, zv = rng.standard_normal((4, n))
        gap = rng.uniform(size=n) < config.missing_rate

        if t > 0:
            h = w_idio + a_idio * eps_prev**2 + b_idio * h
            g = mkt_hbar * (1 - a_mkt - b_mkt) + a_mkt * mkt_prev**2 + b_mkt * g
        f = np.array([np.sqrt(g) * zf[0], *(style_sd * zf[1:])])
        eps = np.sqrt(h) * zi
        r = mu + drift + betas @ f + eps if t > 0 else np.zeros(n)
        prev_close = logp
        logp = logp + r
        eps_prev, mkt_prev = eps, f[0]

        sd = np.sqrt(h + (betas[:, 0] ** 2) * g)
        open_ = prev_close + 0.3 * r + 0.3 * sd * zo
        top = np.maximum(open_, logp) + 0.5 * sd * np.abs(zh)
        bottom = np.minimum(open_, logp) - 0.5 * sd * np.abs(zl)
        o[t], hi[t], lo[t], c[t] = np.exp(open_), np.exp(top), np.exp(bottom), np.exp(logp)
        v[t] = np.round(st["dollar_vol"] / c[t] * np.exp(0.35 * zv + 0.25 * np.abs(zi)))
        reported[t] = listed[t] & ~gap

        # Predictable component for tomorrow, from today's information only.
        hist = np.roll(hist, -1, axis=0)
        hist[-1] = r
        since_listed = np.where(listed[t], since_listed + 1, 0)
        sig = np.sqrt(hbar)
        reversal = -hist[-5:].sum(axis=0) / (sig * np.sqrt(5))
        momentum = hist[:-5].sum(axis=0) / (sig * np.sqrt(15))
        vol_state = np.log(h / hbar)
        raw = 0.6 * reversal + 0.3 * momentum - 0.1 * vol_state
        ok = listed[t] & (since_listed >= 20)
        score = np.zeros(n)
        if ok.sum() >= 2:
            x = raw[ok]
            z = (x - x.mean()) / (x.std() + 1e-12)
            score[ok] = np.clip(z, -3, 3)
        mu = config.signal_strength * np.sqrt(h) * score
        mu_all[t] = mu

    return _Simulation(days, o, hi, lo, c, v, mu_all, reported, listed)


class SyntheticMarket:
    """Deterministic market for one config; simulations are cached and extended as later dates are asked for."""

    def __init__(self, config: MarketConfig | None = None) -> None:
        self.config = config or MarketConfig()
        self._sim: _Simulation | None = None
        self._lock = threading.Lock()

    @property
    def tickers(self) -> list[str]:
        return tickers(self.config)

    def _simulation(self, end: dt.date) -> _Simulation:
        with self._lock:
            if self._sim is None or self._sim.days[-1].date() < end:
                # Simulate a year beyond the request so day-by-day callers do not re-simulate every day.
                horizon = max(end, to_date(self.config.inception)) + dt.timedelta(days=366)
                days = trading_days(self.config.inception, horizon)
                self._sim = _simulate(self.config, len(days), days)
            return self._sim

    def _window(self, start: str | dt.date, end: str | dt.date) -> tuple[_Simulation, slice]:
        start_d, end_d = to_date(start), to_date(end)
        if end_d < start_d:
            raise ValueError(f"end {end_d} is before start {start_d}")
        sim = self._simulation(end_d)
        lo = sim.days.searchsorted(pd.Timestamp(start_d), side="left")
        hi = sim.days.searchsorted(pd.Timestamp(end_d), side="right")
        return sim, slice(lo, hi)

    def prices(self, start: str | dt.date, end: str | dt.date) -> pd.DataFrame:
        """Canonical long table (date, ticker, open, high, low, close, volume) for reported bars in [start, end]."""
        sim, sl = self._window(start, end)
        rows, cols = np.nonzero(sim.reported[sl])
        names = np.asarray(self.tickers, dtype=object)
        out = pd.DataFrame(
            {
                "date": sim.days[sl][rows].date,
                "ticker": names[cols],
                "open": sim.open[sl][rows, cols],
                "high": sim.high[sl][rows, cols],
                "low": sim.low[sl][rows, cols],
                "close": sim.close[sl][rows, cols],
                "volume": sim.volume[sl][rows, cols],
            }
        )
        return out.astype({"ticker": "string"})

    def expected_returns(self, start: str | dt.date, end: str | dt.date) -> pd.DataFrame:
        """True expected log return from close of ``date`` to the next trading day's close (listed tickers)."""
        sim, sl = self._window(start, end)
        rows, cols = np.nonzero(sim.listed[sl])
        names = np.asarray(self.tickers, dtype=object)
        return pd.DataFrame(
            {
                "date": sim.days[sl][rows].date,
                "ticker": pd.array(names[cols], dtype="string"),
                "expected_return": sim.mu[sl][rows, cols],
            }
        )

    def listing_dates(self) -> pd.DataFrame:
        """First and last listed trading day per ticker (last is None for tickers that never delist)."""
        st = _static_draws(self.config)
        finite = st["delist_day"][np.isfinite(st["delist_day"])]
        horizon = int(max(st["list_day"].max(), finite.max() if finite.size else 0)) + 1
        start = to_date(self.config.inception)
        days = trading_days(start, start + dt.timedelta(days=int(horizon * 1.5) + 30))
        first = [days[int(d)].date() for d in st["list_day"]]
        last = [days[int(d) - 1].date() if np.isfinite(d) else None for d in st["delist_day"]]
        return pd.DataFrame({"ticker": self.tickers, "first_day": first, "last_day": last})


_MARKETS: dict[MarketConfig, SyntheticMarket] = {}


def market_for(config: MarketConfig) -> SyntheticMarket:
    """Process-wide cached market per config, so repeated partition fetches reuse one simulation."""
    if config not in _MARKETS:
        _MARKETS[config] = SyntheticMarket(config)
    return _MARKETS[config]


def config_from_dict(values: dict) -> MarketConfig:
    """Build a MarketConfig from a dict, rejecting unknown keys by name."""
    known = {f.name for f in dataclasses.fields(MarketConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown market config keys: {unknown}; known: {sorted(known)}")
    return MarketConfig(**values)
