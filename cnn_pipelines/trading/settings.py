"""Feature-stage settings. Values that shape partition mappings (look-backs) are fixed when the code
location loads, so they come from a preset chosen by $CNN_PRESET (``demo`` default, or ``full``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from cnn_pipelines.settings_file import project_env


@dataclass(frozen=True)
class FeatureSettings:
    """Universe, indicator and target settings, point in time: a trailing universe, scale-free indicators,
    fixed data-error rules."""

    universe_size: int = 40             # top-N by trailing median dollar volume
    universe_window: int = 63           # trailing weekdays for the median (ends the day before use)
    universe_min_obs: int = 60          # bars required inside that window
    periods: tuple[int, ...] = tuple(range(6, 21))            # technical look-backs t = 6..20
    beta_windows: tuple[int, ...] = tuple(range(15, 90, 5))   # rolling beta windows 15..85
    factor_formation: int = 60          # momentum / low-vol formation window (days)
    warmup: int = 400                   # extra history so recursive indicators converge (EMA, Wilder)
    horizons: tuple[int, ...] = (1, 5)  # forward-return horizons (trading days)
    max_abs_daily_return: float = 0.5   # one-day move beyond +50% / -33% (|log| > log 1.5) = data error
    factors_csv: str | None = None      # Fama-French-style daily CSV; None = build factors from the universe
    factors_lag: int = 22               # sessions after its date that a CSV factor row is published (Ken French's
                                        # library posts each month's daily factors within about a month)
    calendar: str = "synthetic"         # trading calendar: "synthetic", or an exchange code (XNYS, XLON, ...)
    non_tradables: tuple[str, ...] = ()  # never in the universe (besides every ^-prefixed index such as ^GSPC)
    shard_tickers: int = 200            # the panel's per-ticker features are computed (and stored) this many
                                        # tickers at a time: memory grows with the shard, not the universe
    panel_workers: int = 0              # processes computing shards side by side (0: one per core; 1: none)

    def weekdays_for_sessions(self, n: int) -> int:
        """Weekday partitions that hold ``n`` sessions of this calendar wherever they end (windows count sessions,
        partitions are weekdays, and an exchange's holidays make up the difference)."""
        from cnn_pipelines.trading.prices.calendar import trading_calendar

        return trading_calendar(self.calendar).weekdays_spanning(n)

    @property
    def universe_lookback(self) -> int:
        """Weekday partitions of raw_prices before a date that hold its universe's trailing window of
        ``universe_window`` sessions (ending the day before), whatever the calendar's holidays: universe and
        forward_returns then pick the same members as indicator_panel, which reads far more."""
        return self.weekdays_for_sessions(self.universe_window + 1) + 4

    @property
    def price_lookback(self) -> int:
        """Weekday partitions of raw_prices a feature partition needs before its own date: the betas' and
        factors' windows in sessions (converted to weekdays), or the indicators' warm-up."""
        factor_need = max(self.beta_windows) + self.factor_formation + 6 + self.universe_window
        return max(self.warmup, self.weekdays_for_sessions(factor_need)) + 5


PRESETS = {
    "demo": FeatureSettings(),
    "full": FeatureSettings(universe_size=500, universe_window=252, universe_min_obs=240, factor_formation=252),
}


def calendar_from_env(env: dict[str, str] | None = None) -> str:
    """The synthetic market's own calendar for the synthetic source; else $CNN_EXCHANGE (default XNYS, NYSE)."""
    env = project_env(env)
    if env.get("CNN_PRICE_SOURCE", "synthetic").strip().lower() == "synthetic":
        return "synthetic"
    return env.get("CNN_EXCHANGE", "XNYS").strip().upper()


def current_settings() -> FeatureSettings:
    """The preset named by $CNN_PRESET, with $CNN_FACTORS_CSV and the source's calendar applied."""
    env = project_env()
    name = env.get("CNN_PRESET", "demo")
    if name not in PRESETS:
        raise ValueError(f"CNN_PRESET must be one of {sorted(PRESETS)}, got {name!r}")
    non_tradables = tuple(t.strip().upper() for t in env.get("CNN_NON_TRADABLES", "").split(",") if t.strip())
    lag = env.get("CNN_FACTORS_LAG", "").strip()
    if lag and (not lag.isdigit()):
        raise ValueError(f"CNN_FACTORS_LAG must be a whole number of sessions, got {lag!r}")
    shard = env.get("CNN_PANEL_SHARD", "").strip()
    if shard and (not shard.isdigit() or int(shard) < 1):
        raise ValueError(f"CNN_PANEL_SHARD must be a whole number of tickers >= 1, got {shard!r}")
    workers = env.get("CNN_PANEL_WORKERS", "").strip()
    if workers and not workers.isdigit():
        raise ValueError(f"CNN_PANEL_WORKERS must be a whole number of processes (0: one per core), got {workers!r}")
    return replace(PRESETS[name], factors_csv=env.get("CNN_FACTORS_CSV") or None, calendar=calendar_from_env(env),
                   **({"factors_lag": int(lag)} if lag else {}), **({"shard_tickers": int(shard)} if shard else {}),
                   **({"panel_workers": int(workers)} if workers else {}),
                   non_tradables=non_tradables)


@dataclass(frozen=True)
class ResearchSettings:
    """Walk-forward CNN-TA research: selection, layout and scaling fitted inside each window, purged folds,
    epochs chosen on validation. Periods are calendar months."""

    first_period: str = "2013-01-01"    # first monthly partition
    train_months: int = 12              # trailing training window (validation slice included)
    val_months: int = 2                 # last months of the window used to choose epochs
    target: str = "fwd_open_1d"         # the label (a forward_returns column): fwd_open_Hd (next open to the
                                        # open H sessions later, tradable) or fwd_Hd (close to close, the book's)
    embargo_days: int = 4               # sessions of purge beyond the label's realization horizon
    mi_sample: int = 20_000             # rows sampled from the training window for mutual information
    mi_bins: int = 16                   # quantile bins per variable in the MI estimate
    n_families: int = 15                # families kept (image columns)
    scale_quantile: float = 0.005       # [-1, 1] scaling uses these training quantiles as the ends
    epochs: int = 8
    batch_size: int = 256
    steps_per_execution: int = 32       # batches per compiled training call (less Python overhead per step)
    learning_rate: float = 0.01
    momentum: float = 0.9
    top_k: int = 3                      # epochs (by validation IC) averaged into the ensemble
    seed: int = 42
    warm_start: bool = True             # start from the previous retrain's best checkpoint when the image layout
                                        # matches, and stop early; False = the book's way (from scratch, all epochs)
    selection_buffer: int = 2           # warm start: a selected family stays while it ranks within n + buffer
    patience: int = 2                   # warm-started: stop after this many epochs without a better validation IC
    retrain_every: int = 1              # retrain every k months; the months between use the last model fitted
    precision: str = "auto"             # "auto": bf16 mixed precision where the CPU has it (kept only if validation
                                        # IC holds), else fp32; "fp32" always
    warm_chains: int = 1                # warm-start chains: a retrain starts from the one this many retrains before
                                        # (C chains train side by side on a cluster; 1 = each from the previous)
    seeds: int = 1                      # CNNs per retrain, each from its own seed (own checkpoints and warm-start
                                        # chain); predictions are their mean, and their spread is reported

    def __post_init__(self) -> None:
        if not re.fullmatch(r"fwd_(open_)?\d+d", self.target):
            raise ValueError(f"target must be fwd_open_<H>d or fwd_<H>d, got {self.target!r}")
        if min(self.retrain_every, self.patience, self.seeds, self.epochs, self.warm_chains) < 1:
            raise ValueError(f"retrain_every, patience, seeds, epochs and warm_chains must be >= 1, got "
                             f"{self.retrain_every}, {self.patience}, {self.seeds}, {self.epochs}, {self.warm_chains}")
        if self.precision not in ("auto", "fp32"):
            raise ValueError(f"precision must be 'auto' or 'fp32', got {self.precision!r}")

    @property
    def horizon(self) -> int:
        """Sessions after its date at which a label is realized: H for close-to-close, H + 1 for
        open-to-open (its exit is the open H sessions after the next one)."""
        h = int(re.search(r"(\d+)d$", self.target).group(1))
        return h + 1 if self.target.startswith("fwd_open_") else h

    @property
    def purge_days(self) -> int:
        """Sessions between the test period's first day and the cutoff: the label horizon plus the embargo."""
        return self.horizon + self.embargo_days


RESEARCH_PRESETS = {
    "demo": ResearchSettings(),
    "full": ResearchSettings(first_period="2007-01-01", train_months=60, val_months=12, mi_sample=100_000,
                             epochs=30, top_k=5),
}


def current_research_settings() -> ResearchSettings:
    """The preset named by $CNN_PRESET; $CNN_TARGET names the label (default fwd_open_1d), $CNN_WARM_START=0
    trains every period from scratch for all epochs (the book's way), $CNN_RETRAIN_EVERY=k retrains every k
    months, $CNN_SEEDS=k averages k networks, $CNN_EPOCHS=n caps the epochs of a retrain, $CNN_WARM_CHAINS=c
    warm-starts each retrain from the one c retrains before."""
    env = project_env()
    name = env.get("CNN_PRESET", "demo")
    if name not in RESEARCH_PRESETS:
        raise ValueError(f"CNN_PRESET must be one of {sorted(RESEARCH_PRESETS)}, got {name!r}")
    changes: dict = {}
    if env.get("CNN_TARGET"):
        changes["target"] = env["CNN_TARGET"]
    if env.get("CNN_WARM_START"):
        changes["warm_start"] = env["CNN_WARM_START"].strip().lower() not in ("0", "false", "no", "off")
    if env.get("CNN_RETRAIN_EVERY"):
        changes["retrain_every"] = int(env["CNN_RETRAIN_EVERY"])
    if env.get("CNN_SEEDS"):
        changes["seeds"] = int(env["CNN_SEEDS"])
    if env.get("CNN_EPOCHS"):
        changes["epochs"] = int(env["CNN_EPOCHS"])
    if env.get("CNN_WARM_CHAINS"):
        changes["warm_chains"] = int(env["CNN_WARM_CHAINS"])
    return replace(RESEARCH_PRESETS[name], **changes)


@dataclass(frozen=True)
class EvaluationSettings:
    """Tearsheet and backtest settings."""

    top_k: int = 5                 # names per side in the long-short backtest
    cost_bps: float = 5.0          # cost per side, basis points of traded notional
    quantiles: int = 5
    periods: tuple[int, ...] = (1, 5, 10, 21)


EVALUATION_PRESETS = {"demo": EvaluationSettings(), "full": EvaluationSettings(top_k=25)}


def current_evaluation_settings() -> EvaluationSettings:
    return EVALUATION_PRESETS.get(project_env().get("CNN_PRESET", "demo"), EvaluationSettings())
