"""A folder of messy per-ticker vendor CSVs, as a user exports them: Yahoo layout with Adj Close, US dates
with a time of day, a leading unnamed index column, float volume, weekend and holiday rows that repeat the
previous bar, and (optionally) one ticker with a broken row; with ``layouts``, also a long CSV, a long Parquet
file and the two-level CSV that ``yfinance.download(...).to_csv()`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket


def vendor_folder(folder: Path, start: str, end: str, n_tickers: int = 5, broken: str | None = None,
                  seed: int = 11, layouts: bool = False) -> dict[str, pd.DataFrame]:
    """Write ``n_tickers`` vendor CSVs on NYSE sessions in [start, end]; return the clean bars per ticker.

    The first file repeats Friday's bar on Saturday and Sunday and Wednesday's bar on Thanksgiving (a
    vendor forward-filling calendar days). ``broken`` names an extra ticker whose file has a negative
    close on one day: ingestion must quarantine it and land the others."""
    folder.mkdir(parents=True, exist_ok=True)
    market = SyntheticMarket(MarketConfig(seed=seed, n_tickers=n_tickers + 1, inception=start, signal_strength=0.2,
                                          late_listing_share=0.0, delisting_share=0.0, missing_rate=0.0))
    prices = market.prices(start, end)
    sessions = trading_calendar("XNYS").sessions(start, end)
    prices = prices[pd.to_datetime(prices["date"]).isin(sessions)]
    names = [f"V{i}" for i in range(n_tickers)] + ([broken] if broken else [])
    clean = {}
    for k, (name, (_, bars)) in enumerate(zip(names, prices.groupby("ticker", sort=True))):
        bars = bars.sort_values("date").reset_index(drop=True)
        dividend = np.where(pd.to_datetime(bars["date"]) < pd.Timestamp(end) - pd.Timedelta(days=200), 0.97, 1.0)
        frame = pd.DataFrame({
            "Date": pd.to_datetime(bars["date"]),
            "Open": bars["open"].round(4), "High": bars["high"].round(4), "Low": bars["low"].round(4),
            "Close": bars["close"].round(4), "Adj Close": (bars["close"] * dividend).round(4),
            "Volume": bars["volume"].astype(float),
        })
        clean[name] = frame.copy()
        if k == 0:
            frame = _with_calendar_fill(frame)
        if broken and name == broken:
            frame.loc[len(frame) // 2, "Close"] = -frame.loc[len(frame) // 2, "Close"]
        frame["Date"] = frame["Date"].dt.strftime("%m/%d/%Y") + " 16:00:00"
        frame.to_csv(folder / f"{name}.csv")  # the index goes out as a leading unnamed column
    if layouts:
        _other_layouts(folder, clean, names)
    return clean


def _other_layouts(folder: Path, clean: dict[str, pd.DataFrame], names: list[str]) -> None:
    long_csv, long_parquet = names[2:4], names[4:]
    # what `yfinance.download([...], auto_adjust=False).to_csv()` writes: a Price row, a Ticker row, a Date row
    wide = clean[names[1]].set_index("Date")
    wide.columns = pd.MultiIndex.from_product([wide.columns, [names[1]]], names=["Price", "Ticker"])
    wide.to_csv(folder / "yf_download.csv")
    (folder / f"{names[1]}.csv").unlink()
    frames = []
    for name in long_csv:
        frames.append(clean[name].assign(Symbol=name))
        (folder / f"{name}.csv").unlink()
    index = clean[names[0]].copy()
    index[["Open", "High", "Low", "Close", "Adj Close"]] *= 10
    index["Adj Close"] = index["Close"]
    index["Volume"] *= 1000
    prev = index.loc[index["Date"] < "2018-12-05"].tail(1)
    if len(prev):  # a flat bar at the previous close on the day of mourning, as index files carry
        c = prev["Close"].item()
        index = pd.concat([index, prev.assign(Date=pd.Timestamp("2018-12-05"), Open=c, High=c, Low=c, Volume=0.0)])
    frames.append(index.assign(Symbol="^GSPC"))
    long = pd.concat(frames, ignore_index=True).sort_values(["Date", "Symbol"])
    stamps = long["Date"].dt.tz_localize("America/New_York") + pd.Timedelta(hours=16)
    long["Date"] = stamps.map(lambda t: t.isoformat())  # 2019-03-08T16:00:00-05:00, 2019-03-11T16:00:00-04:00
    long[["Date", "Symbol", "Open", "High", "Low", "Close", "Adj Close", "Volume"]].to_csv(folder / "all_prices.csv",
                                                                                           index=False)
    rows = []
    for name in long_parquet:
        f = folder / f"{name}.csv"
        bars = pd.read_csv(f, index_col=0)
        f.unlink()
        bars.columns = [c.lower().replace(" ", "_") for c in bars.columns]
        bars["date"] = pd.to_datetime(bars["date"], format="%m/%d/%Y %H:%M:%S")
        rows.append(bars.assign(ticker=name))
    pd.concat(rows, ignore_index=True).to_parquet(folder / "more_prices.parquet", index=False)


def _with_calendar_fill(frame: pd.DataFrame) -> pd.DataFrame:
    """Repeat each Friday's bar on the weekend and the previous session's bar on exchange holidays."""
    days = pd.date_range(frame["Date"].min(), frame["Date"].max(), freq="D")
    return frame.set_index("Date").reindex(days).ffill().rename_axis("Date").reset_index()
