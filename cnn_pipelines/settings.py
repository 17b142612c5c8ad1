"""Feature-stage settings. Values that shape partition mappings (look-backs) are fixed when the code
location loads, so they come from a preset chosen by $CNN_PRESET (``demo`` default, or ``full``)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSettings:
    """Universe, indicator and target settings (DESIGN.md §3 rules 1, 2, 7)."""

    universe_size: int = 40             # top-N by trailing median dollar volume
    universe_window: int = 63           # trailing weekdays for the median (ends the day before use)
    universe_min_obs: int = 60          # bars required inside that window
    periods: tuple[int, ...] = tuple(range(6, 21))            # technical look-backs t = 6..20
    beta_windows: tuple[int, ...] = tuple(range(15, 90, 5))   # rolling beta windows 15..85
    factor_formation: int = 60          # momentum / low-vol formation window (days)
    warmup: int = 300                   # extra history so recursive indicators converge (EMA, Wilder)
    horizons: tuple[int, ...] = (1, 5)  # forward-return horizons (trading days)
    max_abs_daily_return: float = 0.5   # one-day |return| above this is treated as a data error
    factors_csv: str | None = None      # Fama-French-style daily CSV; None = build factors from the universe

    @property
    def price_lookback(self) -> int:
        """Weekday partitions of raw_prices a feature partition needs before its own date."""
        factor_need = max(self.beta_windows) + self.factor_formation + 6 + self.universe_window
        return max(self.warmup, factor_need) + 5


PRESETS = {
    "demo": FeatureSettings(),
    "full": FeatureSettings(universe_size=500, universe_window=252, universe_min_obs=240, factor_formation=252),
}


def current_settings() -> FeatureSettings:
    """The preset named by $CNN_PRESET, with $CNN_FACTORS_CSV applied if set."""
    name = os.environ.get("CNN_PRESET", "demo")
    if name not in PRESETS:
        raise ValueError(f"CNN_PRESET must be one of {sorted(PRESETS)}, got {name!r}")
    s = PRESETS[name]
    csv = os.environ.get("CNN_FACTORS_CSV")
    if csv:
        from dataclasses import replace

        s = replace(s, factors_csv=csv)
    return s
