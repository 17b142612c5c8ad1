"""Dagster resources: the three price sources behind one interface, chosen by $CNN_PRICE_SOURCE."""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from cnn_pipelines.trading.prices.market import MarketConfig, market_for
from cnn_pipelines.settings_file import project_env
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.sources import (EARLIEST, LATEST, download_yahoo, list_price_files,
                                                  price_files_summary, read_price_files)


class PriceSource(dg.ConfigurableResource):
    """One interface for every price source: the canonical long table for a date range (inclusive)."""

    def fetch(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Bars in [start, end]; ``df.attrs['missing_tickers']`` lists requested tickers that returned nothing."""
        raise NotImplementedError

    def coverage(self) -> tuple[dt.date, dt.date] | None:
        """First and last date the source holds, where it can tell without a download (None: unknown)."""
        return None

    @property
    def description(self) -> str:
        return type(self).__name__


class SyntheticPriceSource(PriceSource):
    """Seeded synthetic market (market.py); the offline default."""

    seed: int = 7
    n_tickers: int = 60
    inception: str = "2012-01-02"
    signal_strength: float = 0.10
    missing_rate: float = 0.002

    def market_config(self) -> MarketConfig:
        return MarketConfig(
            seed=self.seed, n_tickers=self.n_tickers, inception=self.inception,
            signal_strength=self.signal_strength, missing_rate=self.missing_rate,
        )

    def fetch(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        df = market_for(self.market_config()).prices(start, end)
        df.attrs["missing_tickers"] = []
        return df

    def coverage(self) -> tuple[dt.date, dt.date] | None:
        return dt.date.fromisoformat(self.inception), dt.date.today()

    @property
    def description(self) -> str:
        return f"synthetic(seed={self.seed}, tickers={self.n_tickers}, signal={self.signal_strength})"


class YahooPriceSource(PriceSource):
    """yfinance batch download, chunked and retried; needs network access. Downloads run through today, so
    every split yfinance has already folded into Close is known and undone (bars as traded)."""

    tickers: list[str]
    chunk_size: int = 50
    max_retries: int = 4

    def fetch(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        df, missing = download_yahoo(self.tickers, start, end, chunk_size=self.chunk_size, max_retries=self.max_retries,
                                     through=dt.date.today())
        df.attrs["missing_tickers"] = missing
        return df

    @property
    def description(self) -> str:
        return f"yahoo({len(self.tickers)} tickers)"


class FilePriceSource(PriceSource):
    """CSV/Parquet files in the canonical long format (a directory, a file or a glob). Timestamps are dated
    in ``exchange``'s time zone; ``date_order`` (dayfirst/monthfirst) decides files whose dates read both ways."""

    path: str
    exchange: str = "XNYS"
    date_order: str | None = None

    def fetch(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        df = read_price_files(self.path, start, end, tz=trading_calendar(self.exchange).timezone,
                              date_order=self.date_order)
        df.attrs["missing_tickers"] = []
        return df

    def coverage(self) -> tuple[dt.date, dt.date] | None:
        summary = self._summary()
        return summary[:2] if summary else None

    def tickers(self) -> tuple[str, ...]:
        """Every ticker the files hold a readable bar for (from the same cached read as ``coverage``)."""
        summary = self._summary()
        return summary[2] if summary else ()

    def _summary(self) -> tuple[dt.date, dt.date, tuple[str, ...]] | None:
        return _files_summary(self.path, self.exchange, self.date_order, _fingerprint(self.path))

    def why_no_bars(self) -> str:
        """Why the files hold no bar at all, for a plan to stop on before any run: none found (with what the
        folder holds instead), or every file unreadable (the first errors, naming file and column)."""
        try:
            list_price_files(self.path)
        except FileNotFoundError as exc:
            return str(exc)
        errors = read_price_files(self.path, EARLIEST, LATEST,
                                  tz=trading_calendar(self.exchange).timezone, date_order=self.date_order).attrs["file_errors"]
        listed = "; ".join(list(errors.values())[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        return f"no file at {self.path!r} holds a readable bar" + (f": {listed}" if listed else "")

    @property
    def description(self) -> str:
        return f"files({self.path})"


def _fingerprint(path: str) -> tuple:
    """Names, sizes and modification times of the files at ``path``: what coverage is cached on."""
    try:
        return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in list_price_files(path))
    except FileNotFoundError:
        return ()


@functools.lru_cache(maxsize=8)
def _files_summary(path: str, exchange: str, date_order: str | None,
                   fingerprint: tuple) -> tuple[dt.date, dt.date, tuple[str, ...]] | None:
    """First and last date in the files and their tickers (read once per process while the files stay the same)."""
    if not fingerprint:
        return None
    return price_files_summary(path, tz=trading_calendar(exchange).timezone, date_order=date_order,
                               cache=summary_cache())


def summary_cache() -> Path:
    """Where each price file's first day, last day and tickers are kept between processes (sources.py)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnn_pipelines" / "price_files.json"


def price_source_from_env(env: dict[str, str] | None = None) -> PriceSource:
    """$CNN_PRICE_SOURCE = synthetic (default) | yahoo ($CNN_TICKERS, comma-separated) | files ($CNN_PRICE_FILES,
    read on $CNN_EXCHANGE's calendar, $CNN_DATE_ORDER for ambiguous numeric dates); the settings file first."""
    env = project_env(env)
    kind = env.get("CNN_PRICE_SOURCE", "synthetic").strip().lower()
    if kind == "synthetic":
        return SyntheticPriceSource(
            seed=int(env.get("CNN_SYNTHETIC_SEED", 7)),
            n_tickers=int(env.get("CNN_SYNTHETIC_TICKERS", 60)),
            signal_strength=float(env.get("CNN_SYNTHETIC_SIGNAL", 0.10)),
        )
    if kind == "yahoo":
        tickers = [t for t in env.get("CNN_TICKERS", "").split(",") if t.strip()]
        if not tickers:
            raise ValueError("CNN_PRICE_SOURCE=yahoo needs CNN_TICKERS (comma-separated symbols)")
        return YahooPriceSource(tickers=tickers)
    if kind == "files":
        if not env.get("CNN_PRICE_FILES"):
            raise ValueError("CNN_PRICE_SOURCE=files needs CNN_PRICE_FILES (a directory, file or glob)")
        return FilePriceSource(path=env["CNN_PRICE_FILES"], exchange=env.get("CNN_EXCHANGE", "XNYS").strip().upper(),
                               date_order=env.get("CNN_DATE_ORDER") or None)
    raise ValueError(f"CNN_PRICE_SOURCE must be synthetic, yahoo or files; got {kind!r}")
