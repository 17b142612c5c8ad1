"""Price sources: files (CSV/Parquet, long or per-ticker, vendor column names), yfinance-shaped frames."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnn_pipelines.trading.prices.resources import FilePriceSource, SyntheticPriceSource, YahooPriceSource, price_source_from_env
from cnn_pipelines.trading.prices import sources
from cnn_pipelines.trading.prices.sources import (NOT_NUMBERS, _in_range, download_yahoo, read_price_file,
                                                  read_price_files, yahoo_frame_to_long)
from cnn_pipelines.trading.prices.validation import PriceSchemaError, validate_prices

DATES = pd.bdate_range("2022-01-03", periods=5)


def ticker_frame(ticker: str, scale: float = 1.0) -> pd.DataFrame:
    close = np.linspace(100, 104, 5) * scale
    return pd.DataFrame({"Date": DATES, "Open": close - 0.5, "High": close + 1, "Low": close - 1,
                         "Close": close, "Adj Close": close / 2, "Volume": 1e6})


def test_per_ticker_csv_files_with_adj_close(tmp_path):
    ticker_frame("AAPL").to_csv(tmp_path / "aapl.csv", index=False)
    ticker_frame("MSFT", 2).to_csv(tmp_path / "MSFT.csv", index=False)
    out = read_price_files(str(tmp_path), "2022-01-04", "2022-01-06")
    assert sorted(out["ticker"].unique()) == ["AAPL", "MSFT"]
    assert len(out) == 6
    a = out[out["ticker"] == "AAPL"].iloc[0]
    # bars stay as reported (issue 27: adjusted on read, as of the reader's day); Adj Close rides along for
    # ingestion to derive each bar's adjustment
    assert a["close"] == pytest.approx(101.0) and a["open"] == pytest.approx(100.5) and a["adj_close"] == pytest.approx(50.5)
    validate_prices(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.tuples(st.sampled_from(["AAA", "bbb", "Cc1", "D.E", "brk-b"]),
                                st.sampled_from([".csv", ".CSV", ".Csv", ".csv.gz", ".CSV.GZ", ".parquet",
                                                 ".PARQUET", ".txt", ".xlsx", ""])),
                      min_size=1, max_size=6, unique_by=lambda t: t[0].upper()))
def test_every_price_file_is_read_whatever_its_extensions_case_and_the_rest_are_named(tmp_path_factory, names):
    """An upper-case ``.CSV`` once passed over in silence: its ticker was simply absent from the lake. Every
    CSV/Parquet file is read, any letter case; any other file in the folder is named as not read."""
    folder = tmp_path_factory.mktemp("vendor")
    expected, others = set(), set()
    for stem, ext in names:
        frame = ticker_frame(stem)
        path = folder / f"{stem}{ext}"
        if ext.lower() == ".parquet":
            frame.to_parquet(path, index=False)
        elif ext.lower() in (".csv", ".csv.gz"):
            frame.to_csv(path, index=False, compression="gzip" if ext.lower().endswith(".gz") else None)
        else:
            path.write_text("not prices")
        (expected if ext.lower() in (".csv", ".csv.gz", ".parquet") else others).add(
            stem.upper() if ext.lower() in (".csv", ".csv.gz", ".parquet") else path.name)
    if not expected:
        with pytest.raises(FileNotFoundError):
            read_price_files(str(folder), DATES[0], DATES[-1])
        return
    out = read_price_files(str(folder), DATES[0], DATES[-1])
    assert set(out["ticker"]) == expected and out.attrs["file_errors"] == {}
    assert set(out.attrs["ignored_files"]) == others


def test_long_parquet_and_glob(tmp_path):
    long = pd.DataFrame({"date": DATES.repeat(2), "Symbol": ["X", "Y"] * 5, "open": 1.0, "high": 2.0,
                         "low": 0.5, "close": 1.5, "volume": 10})
    long.to_parquet(tmp_path / "part1.parquet")
    out = read_price_files(str(tmp_path / "*.parquet"), DATES[0].date(), DATES[-1].date())
    assert len(out) == 10 and set(out["ticker"]) == {"X", "Y"}
    assert FilePriceSource(path=str(tmp_path)).fetch(DATES[0].date(), DATES[1].date()).shape[0] == 4


def test_missing_column_names_file_and_column_and_other_files_still_load(tmp_path):
    ticker_frame("A").drop(columns=["Volume"]).to_csv(tmp_path / "bad.csv", index=False)
    ticker_frame("B").to_csv(tmp_path / "good.csv", index=False)
    out = read_price_files(str(tmp_path), "2022-01-01", "2022-02-01")
    assert set(out["ticker"]) == {"GOOD"}
    assert list(out.attrs["file_errors"]) == ["BAD"]
    assert re.search(r"bad\.csv.*volume", out.attrs["file_errors"]["BAD"])


def test_unparseable_dates_and_corrupt_file_named(tmp_path):
    f = ticker_frame("A").astype({"Date": str})
    f.loc[2, "Date"] = "not a date"
    f.to_csv(tmp_path / "dates.csv", index=False)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    errors = read_price_files(str(tmp_path), "2022-01-01", "2022-02-01").attrs["file_errors"]
    assert re.search(r"dates\.csv.*'date'", errors["DATES"])
    assert "junk.parquet" in errors["JUNK"]


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CSV/Parquet"):
        read_price_files(str(tmp_path / "nothing*"), "2022-01-01", "2022-02-01")


@st.composite
def bars_in_two_layouts(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same bars as a long table and as yfinance.download returns them: columns (Price, Ticker) or
    (Ticker, Price), dates as index (naive, or New York midnights as Ticker.history gives), a ticker that is
    absent on some days (listed late, delisted, a missing bar) padded with empty cells."""
    tickers = draw(st.lists(st.sampled_from(["AAPL", "MSFT", "BRK-B", "^GSPC", "X", "ab.c"]), min_size=1, max_size=4,
                            unique=True))
    days = pd.bdate_range("2022-01-03", periods=draw(st.integers(2, 8)), name="Date")
    extras = draw(st.sampled_from([[], ["Adj Close"], ["Adj Close", "Dividends", "Stock Splits"]]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    rows = []
    for t in tickers:
        present = draw(st.lists(st.booleans(), min_size=len(days), max_size=len(days)).filter(any))
        close = 50 * np.exp(rng.normal(0, 0.02, len(days)).cumsum())
        bars = pd.DataFrame({"Date": days, "Ticker": t, "Open": close * 1.001, "High": close * 1.01,
                             "Low": close * 0.99, "Close": close, "Volume": rng.integers(1, 10**7, len(days)) * 1.0})
        if extras:
            bars["Adj Close"] = close * 0.98
        if "Stock Splits" in extras:
            bars["Dividends"] = 0.0
            bars["Stock Splits"] = np.where(rng.random(len(days)) < 0.2, 2.0, 0.0)
        rows.append(bars.loc[present])
    long = pd.concat(rows, ignore_index=True)
    wide = long.set_index(["Date", "Ticker"]).unstack("Ticker")
    wide.columns = wide.columns.set_names(["Price", "Ticker"])
    if draw(st.booleans()):
        wide = wide.swaplevel(axis=1).sort_index(axis=1)  # group_by="ticker"
    if draw(st.booleans()):
        wide.index = wide.index.tz_localize("America/New_York")
    return long, wide


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layouts=bars_in_two_layouts(), ext=st.sampled_from([".csv", ".csv.gz", ".parquet"]))
def test_yfinance_two_level_files_read_as_the_same_bars_as_a_long_file(tmp_path_factory, layouts, ext):
    """``yf.download([...]).to_csv()`` writes a Price row, a Ticker row and a Date row; read as one header, the
    dates sat under 'Price' and every such file was quarantined ("missing column(s) ['date']"). Whatever the
    level order, index and format, the file reads as the same bars as the long file of the same data."""
    long, wide = layouts
    folder = tmp_path_factory.mktemp("two_level")
    long.to_csv(folder / "long.csv", index=False)
    path = folder / f"download{ext}"
    wide.to_parquet(path) if ext == ".parquet" else wide.to_csv(path)
    want = read_price_files(str(folder / "long.csv"), DATES[0], "2022-02-01")
    got = read_price_files(str(path), DATES[0], "2022-02-01")
    assert got.attrs["file_errors"] == {}
    key = ["ticker", "date"]
    pd.testing.assert_frame_equal(got.drop(columns="source_file").sort_values(key).reset_index(drop=True),
                                  want.drop(columns="source_file").sort_values(key).reset_index(drop=True),
                                  check_dtype=False, check_like=True, rtol=1e-12)


# how vendors name the columns: (date, open, high, low, close, volume, ticker or None for one file per ticker)
VENDOR_NAMES = {
    "yahoo": ("Date", "Open", "High", "Low", "Close", "Volume", None),
    "alpha_vantage": ("timestamp", "open", "high", "low", "close", "volume", None),
    "amibroker": ("Date/Time", "Open", "High", "Low", "Close", "Volume", "Ticker"),
    "bloomberg": ("Date", "PX_OPEN", "PX_HIGH", "PX_LOW", "PX_LAST", "PX_VOLUME", None),
    "databento": ("ts_event", "open", "high", "low", "close", "volume", "symbol"),
    "polygon": ("window_start", "open", "high", "low", "close", "volume", "ticker"),
    "kaggle_sp500": ("date", "open", "high", "low", "close", "volume", "Name"),
    "polygon_or_alpaca_rest": ("t", "o", "h", "l", "c", "v", None),
    "eodhd_bulk": ("date", "open", "high", "low", "close", "volume", "code"),
    "tushare": ("trade_date", "open", "high", "low", "close", "vol", "ts_code"),
}
# how they write the session date of a bar (a New York date)
DATE_WRITERS = {
    "iso": lambda d: d.strftime("%Y-%m-%d"),
    "yyyymmdd": lambda d: d.strftime("%Y%m%d"),
    "us": lambda d: d.strftime("%m/%d/%Y"),
    "day_first": lambda d: d.strftime("%d.%m.%Y"),
    "utc_midnight": lambda d: d.strftime("%Y-%m-%dT00:00:00.000Z"),
    "epoch_s": lambda d: (d.tz_localize("America/New_York").tz_convert("UTC").asi8 // 10**9).astype(str),
    "epoch_ms_close": lambda d: ((d + pd.Timedelta(hours=16)).tz_localize("America/New_York").asi8 // 10**6).astype(str),
    "epoch_ns": lambda d: d.tz_localize("America/New_York").asi8.astype(str),
}


@st.composite
def vendor_file(draw) -> tuple[pd.DataFrame, str, str, bytes]:
    """Bars of one or more tickers, and the same bars as one vendor writes them: its column names, date
    encoding, delimiter and number format (European: semicolons, decimal comma, points between thousands),
    byte-order mark, line ends and row order."""
    names = VENDOR_NAMES[draw(st.sampled_from(sorted(VENDOR_NAMES)))]
    tickers = ["ACME"] if names[6] is None else draw(st.lists(st.sampled_from(["AAPL", "MSFT", "BRK.B"]),
                                                               min_size=1, max_size=3, unique=True))
    days = pd.bdate_range("2021-01-04", periods=draw(st.integers(9, 30)))  # past the 12th: day-first is decidable
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    bars = []
    for t in tickers:
        close = np.round(50 * np.exp(rng.normal(0, 0.02, len(days)).cumsum()), 2)
        bars.append(pd.DataFrame({"date": days, "ticker": t, "open": np.round(close * 1.003, 2),
                                  "high": np.round(close * 1.01, 2), "low": np.round(close * 0.99, 2),
                                  "close": close, "volume": rng.integers(1, 5 * 10**6, len(days)).astype(float)}))
    truth = pd.concat(bars, ignore_index=True)
    out = pd.DataFrame({names[0]: DATE_WRITERS[draw(st.sampled_from(sorted(DATE_WRITERS)))](pd.DatetimeIndex(truth["date"]))})
    for col, name in zip(["open", "high", "low", "close"], names[1:5]):
        out[name] = truth[col]
    european, quoted = draw(st.sampled_from([(True, False), (False, False), (False, True)]))
    if quoted:  # US exports quoting numbers with thousands separators: "1,234.56", "2,345,678"
        truth[["open", "high", "low", "close"]] *= 100
        for col, name in zip(["open", "high", "low", "close"], names[1:5]):
            out[name] = [f"{v:,.2f}" for v in truth[col]]
    out[names[5]] = ([f"{v:,.0f}".replace(",", ".") for v in truth["volume"]] if european
                     else [f"{v:,.0f}" for v in truth["volume"]] if quoted else truth["volume"])
    if names[6] is not None:
        out[names[6]] = truth["ticker"]
    if draw(st.booleans()):
        out = out.iloc[::-1]  # newest first, as Alpha Vantage writes
        truth = truth.iloc[::-1].reset_index(drop=True)  # the bars in the file's order
    sep = ";" if european else draw(st.sampled_from([",", "\t"]))
    text = out.to_csv(index=False, sep=sep, decimal="," if european else ".",
                      lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()
    return truth, "ACME.csv" if names[6] is None else "prices.csv", sep, data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=vendor_file())
def test_vendor_dialects_read_as_the_same_bars(tmp_path_factory, case):
    """Files that Bloomberg, AmiBroker, Databento, Polygon, Alpha Vantage and Kaggle's S&P 500 set write were
    each quarantined for a column name ('PX_LAST', 'Date/Time', 'ts_event', 'window_start'), read as one ticker
    named after the file ('Name'), or refused for their dates (epochs) or delimiter (European semicolons and
    decimal commas, tabs). Whatever the vendor's names, dates, delimiter and number format, the bars read the same."""
    truth, name, sep, data = case
    folder = tmp_path_factory.mktemp("dialect")
    (folder / name).write_bytes(data)
    got = read_price_files(str(folder), "2021-01-01", "2021-03-31")
    assert got.attrs["file_errors"] == {}, (sep, data[:300])
    key = ["ticker", "date"]
    want = truth.assign(date=truth["date"].dt.date).sort_values(key).reset_index(drop=True)
    got = got[want.columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)


JUNK = ["-", "n.a.", "#VALUE!", "1.2M", "--", "null value"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=vendor_file(), cells=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(range(5)),
                                                     st.sampled_from(JUNK)), min_size=1, max_size=4))
def test_text_where_a_number_belongs_holds_back_that_day_not_the_batch(tmp_path_factory, case, cells):
    """A '-' in one file's close column once failed the whole batch, every ticker, with "column 'close' has
    non-numeric values" naming no file. Such text is a missing value now: that ticker's day is quarantined by
    validation, every other bar lands, and the run names the file, day and text."""
    truth, name, sep, data = case
    text = data.decode().lstrip("\ufeff")
    frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    hit = set()
    for row, col, junk in cells:
        row %= len(frame)
        frame.iat[row, 1 + col] = junk  # columns 1-5 are open .. volume in every vendor's layout
        hit.add(row)
    folder = tmp_path_factory.mktemp("junk")
    body = frame.to_csv(index=False, sep=sep, lineterminator="\n")
    (folder / name).write_text(body)
    got = read_price_files(str(folder), "2021-01-01", "2021-03-31")
    assert got.attrs["file_errors"] == {}
    assert set(got.attrs["not_numbers"]) == {name}
    assert f"{len(hit)} bar(s) with text for a number" in got.attrs["not_numbers"][name]
    clean, report = validate_prices(got, strict=False)
    held = {(r.date, r.ticker) for r in report.quarantine.itertuples()}
    assert held == {(truth["date"].iloc[r].date(), truth["ticker"].iloc[r]) for r in hit} == set(
        zip(got.loc[got[["open", "high", "low", "close", "volume"]].isna().any(axis=1), "date"],
            got.loc[got[["open", "high", "low", "close", "volume"]].isna().any(axis=1), "ticker"]))
    assert len(clean) == len(truth) - len(hit)


def test_a_folder_of_txt_price_files_is_pointed_at_a_glob_and_read_with_tickers_from_their_names(tmp_path):
    """Kaggle's US stocks set is a folder of ``aapl.us.txt`` CSVs: the folder error says which glob reads them."""
    for t in ("aapl.us", "msft.us"):
        ticker_frame(t).assign(OpenInt=0).to_csv(tmp_path / f"{t}.txt", index=False)
    with pytest.raises(FileNotFoundError, match=r"2 \.txt file\(s\).*glob such as '.*\*\.txt'"):
        read_price_files(str(tmp_path), DATES[0], DATES[-1])
    out = read_price_files(str(tmp_path / "*.txt"), DATES[0], DATES[-1])
    assert set(out["ticker"]) == {"AAPL.US", "MSFT.US"} and len(out) == 10


def test_two_level_columns_without_a_level_of_fields_are_named(tmp_path):
    frame = yf_multi(["AAA"])
    frame.columns = pd.MultiIndex.from_tuples([(t, f.replace("Close", "Last")) for f, t in frame.columns])
    frame.to_csv(tmp_path / "odd.csv")
    errors = read_price_files(str(tmp_path), DATES[0], DATES[-1]).attrs["file_errors"]
    assert re.search(r"odd\.csv: columns on two levels.*'Last'", errors["ODD"])


def yf_multi(tickers: list[str], price_first: bool = True) -> pd.DataFrame:
    """A frame shaped like yfinance.download(auto_adjust=True) for several tickers."""
    fields = ["Close", "High", "Low", "Open", "Volume"]
    cols = pd.MultiIndex.from_product([fields, tickers], names=["Price", "Ticker"]) if price_first else \
        pd.MultiIndex.from_product([tickers, fields], names=["Ticker", "Price"])
    rng = np.random.default_rng(0)
    data = pd.DataFrame(index=pd.DatetimeIndex(DATES, name="Date"), columns=cols, dtype=float)
    for t in tickers:
        c = 50 + rng.standard_normal(5).cumsum()
        vals = {"Close": c, "High": c + 1, "Low": c - 1, "Open": c + 0.2, "Volume": 1e5}
        for f in fields:
            data[(f, t) if price_first else (t, f)] = vals[f]
    return data


@pytest.mark.parametrize("price_first", [True, False])
def test_yahoo_multiindex_frames(price_first):
    frame = yf_multi(["AAA", "BBB"], price_first)
    frame.loc[:, ("Close", "BBB") if price_first else ("BBB", "Close")] = np.nan  # BBB listed nowhere... partly
    out = yahoo_frame_to_long(frame, ["AAA", "BBB"])
    assert set(out.columns) == {"date", "ticker", "open", "high", "low", "close", "volume"}
    assert (out["ticker"] == "AAA").sum() == 5


def test_yahoo_download_reports_empty_tickers_and_retries():
    calls = {"n": 0}
    waits = []

    def flaky(**kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("rate limited")
        frame = yf_multi(["AAA", "ZZZ"])
        for f in ["Close", "High", "Low", "Open", "Volume"]:
            frame[(f, "ZZZ")] = np.nan  # yfinance returns all-NaN columns for unknown tickers
        return frame

    out, missing = download_yahoo(["AAA", "ZZZ"], "2022-01-03", "2022-01-07", downloader=flaky, sleep=waits.append)
    assert missing == ["ZZZ"] and set(out["ticker"]) == {"AAA"} and len(out) == 5
    assert waits == [2.0]
    validate_prices(out)


def test_yahoo_download_chunks_and_gives_up_after_retries():
    seen = []

    def ok(**kw):
        seen.append(list(kw["tickers"]))
        # unadjusted bars with Adj Close: we adjust (and keep close x volume the traded dollar volume)
        assert kw["auto_adjust"] is False and kw["end"] == "2022-01-08"  # yfinance's end is exclusive
        return yf_multi(kw["tickers"])

    out, missing = download_yahoo([f"T{i}" for i in range(5)], "2022-01-03", "2022-01-07", chunk_size=2, downloader=ok)
    assert seen == [["T0", "T1"], ["T2", "T3"], ["T4"]] and missing == [] and out["ticker"].nunique() == 5

    def down(**kw):
        raise TimeoutError("no network")

    with pytest.raises(RuntimeError, match="failed after 3 tries"):
        download_yahoo(["A"], "2022-01-03", "2022-01-07", max_retries=3, downloader=down, sleep=lambda s: None)


def test_yahoo_single_ticker_flat_columns():
    frame = yf_multi(["AAA"]).droplevel("Ticker", axis=1)
    out = yahoo_frame_to_long(frame, ["AAA"])
    assert len(out) == 5 and set(out["ticker"]) == {"AAA"}


def test_resources_share_one_interface(tmp_path):
    syn = SyntheticPriceSource(n_tickers=5)
    out = syn.fetch(dt.date(2013, 1, 2), dt.date(2013, 1, 10))
    assert list(out.columns) == ["date", "ticker", "open", "high", "low", "close", "volume"]
    assert isinstance(price_source_from_env({}), SyntheticPriceSource)
    assert isinstance(price_source_from_env({"CNN_PRICE_SOURCE": "yahoo", "CNN_TICKERS": "A,B"}), YahooPriceSource)
    assert isinstance(price_source_from_env({"CNN_PRICE_SOURCE": "files", "CNN_PRICE_FILES": str(tmp_path)}), FilePriceSource)
    with pytest.raises(ValueError, match="CNN_TICKERS"):
        price_source_from_env({"CNN_PRICE_SOURCE": "yahoo"})
    with pytest.raises(ValueError, match="synthetic, yahoo or files"):
        price_source_from_env({"CNN_PRICE_SOURCE": "bloomberg"})


def test_yahoo_downloads_through_today_and_undoes_splits_after_the_range():
    """yfinance split-adjusts Close up to the download day: a 2:1 split after the requested range halves the
    range's closes. The download runs through that day and the split is undone, so the bars are what traded."""
    days = pd.bdate_range("2022-01-03", periods=10)
    cols = pd.MultiIndex.from_product([["Adj Close", "Close", "High", "Low", "Open", "Volume", "Dividends",
                                        "Stock Splits"], ["AAA"]], names=["Price", "Ticker"])
    traded = np.linspace(100, 109, 10)
    split_later = np.where(days < days[7], 2.0, 1.0)  # 2:1 split on days[7]
    frame = pd.DataFrame(index=pd.DatetimeIndex(days, name="Date"), columns=cols, dtype=float)
    for f, v in {"Close": traded / split_later, "Adj Close": traded / split_later, "High": traded / split_later + 1,
                 "Low": traded / split_later - 1, "Open": traded / split_later, "Volume": 1e5 * split_later,
                 "Dividends": 0.0, "Stock Splits": np.where(days == days[7], 2.0, 0.0)}.items():
        frame[(f, "AAA")] = v
    seen = []

    def downloader(**kw):
        seen.append((kw["end"], kw["actions"]))
        return frame.loc[: pd.Timestamp(kw["end"]) - pd.Timedelta(days=1)]

    out, _ = download_yahoo(["AAA"], days[0], days[4], downloader=downloader, through=days[-1])
    assert seen == [(str((days[-1] + pd.Timedelta(days=1)).date()), True)]
    assert out["close"].tolist() == pytest.approx(traded[:5].tolist()) and (out["volume"] == 1e5).all()
    assert pd.to_datetime(out["date"]).max() == days[4]


def test_quoted_decimal_commas_in_a_comma_file_are_never_read_as_thousands(tmp_path):
    """pandas' thousands="," reads a quoted "101,25" as 10125: such a file is named, its bars held back."""
    (tmp_path / "EU.csv").write_text('Date,Open,High,Low,Close,Volume\n'
                                     '2021-01-04,"101,25","102,00","100,50","101,75","1,000"\n'
                                     '2021-01-05,"1,234.50","1,240.00","1,230.00","1,235.25","12,345,678"\n')
    out = read_price_files(str(tmp_path), "2021-01-01", "2021-02-01").set_index("date")
    assert out.loc[dt.date(2021, 1, 4), ["open", "close"]].isna().all()  # never 10125
    assert out.loc[dt.date(2021, 1, 4), "volume"] == 1000 and out.loc[dt.date(2021, 1, 5), "volume"] == 12345678
    assert "2021-01-04 open '101,25', high '102,00'" in out.attrs["not_numbers"]["EU.csv"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(per_day=st.integers(2, 80), days=st.integers(1, 4), minutes=st.sampled_from([1, 5, 30]),
       offset=st.booleans(), twice=st.booleans())
def test_intraday_bars_are_refused_with_what_to_do_and_a_repeated_daily_bar_is_not(tmp_path_factory, per_day, days,
                                                                                   minutes, offset, twice):
    """Minute bars once read as 390 conflicting daily bars a day, every day quarantined as a "conflicting
    duplicate". The file is now named as intraday with how to resample it; the same daily bar written twice is
    still one bar."""
    folder = tmp_path_factory.mktemp("intraday")
    per_day = min(per_day, 390 // minutes)  # within the session, 09:30-16:00
    sessions = pd.bdate_range("2021-03-01", periods=days)
    stamps = pd.DatetimeIndex([s + pd.Timedelta(hours=9, minutes=30 + minutes * k) for s in sessions for k in range(per_day)])
    text = (stamps.tz_localize("America/New_York").map(lambda t: t.isoformat()) if offset
            else stamps.strftime("%Y-%m-%d %H:%M:%S"))
    pd.DataFrame({"timestamp": text, "open": 10.0, "high": 10.5, "low": 9.5, "close": 10.0,
                  "volume": 100.0}).to_csv(folder / "MINUTE.csv", index=False)
    daily = ticker_frame("D")
    (pd.concat([daily, daily]) if twice else daily).to_csv(folder / "DAILY.csv", index=False)
    out = read_price_files(str(folder), "2021-01-01", "2022-02-01")
    assert set(out.attrs["file_errors"]) == {"MINUTE"}
    assert re.search(rf"MINUTE\.csv: intraday bars \({per_day} per ticker and day.*resample to daily bars",
                     out.attrs["file_errors"]["MINUTE"])
    assert set(out["ticker"]) == {"DAILY"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=st.sampled_from(["W-FRI", "W-MON", "MS", "ME", "QE"]), bars=st.integers(8, 120),
       holes=st.floats(0.0, 0.5), long_file=st.booleans(), seed=st.integers(0, 2**16))
def test_weekly_or_monthly_bars_are_refused_and_daily_bars_with_holes_are_not(tmp_path_factory, rule, bars, holes,
                                                                              long_file, seed):
    """Weekly bars were read as daily ones: indicators ran over weeks under daily names and no label was ever
    realized, so research failed on "0 training rows". Such a file is now refused, naming the share of weekdays
    with a bar; a daily file missing up to half its sessions (an illiquid name, a halt) is read."""
    folder = tmp_path_factory.mktemp("sparse")
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-02", periods=bars * 70)  # a quarter holds about 65 weekdays
    coarse = pd.Series(days, index=days).resample(rule).last().dropna()
    daily = days[rng.random(len(days)) >= holes]

    def bars_on(stamps, ticker):
        return pd.DataFrame({"date": pd.DatetimeIndex(stamps).strftime("%Y-%m-%d"), "ticker": ticker, "open": 10.0,
                             "high": 10.5, "low": 9.5, "close": 10.0, "volume": 100.0})

    sparse = pd.concat([bars_on(coarse.iloc[:bars], t) for t in (["W1", "W2", "W3"] if long_file else ["W1"])])
    sparse.to_csv(folder / "WEEKLY.csv", index=False)
    bars_on(daily, "DAILY").to_csv(folder / "DAILY.csv", index=False)
    out = read_price_files(str(folder), "2018-01-01", "2099-12-31")
    assert set(out.attrs["file_errors"]) == {"WEEKLY"}
    assert re.search(r"WEEKLY\.csv: bars on \d+% of the weekdays its tickers span \(W1: \d+ bars from .* to .*\): "
                     r"weekly or monthly bars", out.attrs["file_errors"]["WEEKLY"])
    assert set(out["ticker"]) == {"DAILY"} and len(out) == len(daily)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tickers=st.lists(st.sampled_from(["NA", "NULL", "NAN", "NONE", "TRUE", "FALSE", "0700", "7203", "0005",
                                         "600519.SH", "AAPL", "BRK-B", "1"]), min_size=1, max_size=5, unique=True),
       column=st.sampled_from(["ticker", "Symbol", "code", "ts_code", "Name"]), sep=st.sampled_from([",", ";", "\t"]))
def test_a_long_file_keeps_every_ticker_as_written(tmp_path_factory, tickers, column, sep):
    """pandas reads "NA" (National Bank of Canada) and "NULL" as missing and a column of codes (Tokyo's 7203,
    Hong Kong's 0700) as integers: those rows lost their ticker or its leading zero. Every ticker reads as
    written, from any of the ticker columns vendors write."""
    folder = tmp_path_factory.mktemp("tickers")
    frame = pd.concat([pd.DataFrame({"Date": DATES.strftime("%Y-%m-%d"), column: t, "Open": 10.0, "High": 11.0,
                                     "Low": 9.0, "Close": 10.5, "Volume": 1000.0}) for t in tickers])
    frame.to_csv(folder / "long.csv", index=False, sep=sep, decimal="," if sep == ";" else ".")
    out = read_price_files(str(folder), DATES[0], DATES[-1])
    assert out.attrs["file_errors"] == {}
    assert out["ticker"].value_counts().to_dict() == {t: len(DATES) for t in tickers}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tickers=st.lists(st.sampled_from(["AAPL", "MSFT", "NA", "BRK_B"]), min_size=1, max_size=3, unique=True),
       table_format=st.booleans(), extension=st.sampled_from([".h5", ".H5", ".hdf5"]))
def test_the_books_hdf5_store_reads_as_the_wiki_bars_it_holds(tmp_path_factory, tickers, table_format, extension):
    """The chapter's notebooks read Quandl's WIKI prices from assets.h5 (key quandl/wiki/prices, indexed by date
    and ticker, beside metadata and an index series without tickers): the store a reader of the book has. It was
    not read at all (HDF5 was no price file); it now reads as the WIKI bars, with adj_close for the adjustments."""
    folder = tmp_path_factory.mktemp("store")
    store = folder / f"assets{extension}"
    idx = pd.MultiIndex.from_product([DATES, tickers], names=["date", "ticker"])
    rng = np.random.default_rng(len(tickers))
    close = rng.uniform(10, 20, len(idx)).round(2)
    wiki = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1e6,
                         "ex-dividend": 0.0, "split_ratio": 1.0, "adj_open": close / 2, "adj_high": (close + 1) / 2,
                         "adj_low": (close - 1) / 2, "adj_close": close / 2, "adj_volume": 2e6}, index=idx)
    fmt = "table" if table_format else "fixed"
    wiki.to_hdf(store, key="quandl/wiki/prices", format=fmt)
    pd.DataFrame({"name": ["x"], "marketcap": [1.0]}, index=pd.Index(["AAPL"], name="ticker")).to_hdf(
        store, key="quandl/wiki/stocks", format=fmt)
    wiki.xs(tickers[0], level="ticker")[["open", "high", "low", "close", "volume"]].to_hdf(store, key="sp500/stooq",
                                                                                         format=fmt)
    out = read_price_files(str(folder), DATES[0], DATES[-1])
    assert out.attrs["file_errors"] == {}
    got = out.set_index(["date", "ticker"]).sort_index()
    want = wiki.reset_index().assign(date=lambda d: d["date"].dt.date).set_index(["date", "ticker"]).sort_index()
    assert [(d, str(t)) for d, t in got.index] == list(want.index)
    for col in ("open", "high", "low", "close", "volume", "adj_close"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy())
    validate_prices(out.drop(columns=["source_file"]))
    # two tables of bars with tickers: which one is meant cannot be guessed
    wiki.to_hdf(store, key="other/prices", format=fmt)
    again = read_price_files(str(folder), DATES[0], DATES[-1])
    assert re.search(r"2 tables of daily bars \(/other/prices, /quandl/wiki/prices\)",
                     next(iter(again.attrs["file_errors"].values())))


def _store_of_bars(rng: np.random.Generator, tickers: list[str], days: pd.DatetimeIndex, split_at: int | None,
                   ) -> pd.DataFrame:
    """Daily bars of ``tickers`` over ``days``, each ticker missing some days; with ``split_at``, the first ticker
    splits 2:1 on that day, written as yfinance does (close split-adjusted, the split in a column)."""
    frames = []
    for i, t in enumerate(tickers):
        keep = rng.random(len(days)) > 0.1
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days)))) * (1 + i)
        frame = pd.DataFrame({"date": days, "ticker": t, "open": close * 1.001, "high": close * 1.01,
                              "low": close * 0.99, "close": close, "adj_close": close * 0.9, "volume": 1e5 * (1 + i)})
        if split_at is not None:
            frame["split"] = np.where((i == 0) & (np.arange(len(days)) == split_at), 2.0, 0.0)
        frames.append(frame.loc[keep | (frame.get("split", 0) > 0)])
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), layout=st.sampled_from(["date_ticker", "ticker_date", "per_ticker"]),
       by_date=st.booleans(), table_format=st.booleans(), zone=st.sampled_from([None, "UTC", "America/New_York"]),
       split=st.booleans(), every=st.sampled_from(["B", "B", "W-FRI", "BME"]), undated=st.booleans(),
       first=st.integers(0, 1100), length=st.one_of(st.integers(1, 40), st.integers(280, 600)))
def test_a_range_of_an_hdf5_store_reads_as_the_whole_store_cut_to_it(tmp_path_factory, seed, layout, by_date,
                                                                      table_format, zone, split, every, undated,
                                                                      first, length):
    """Every run read the whole store: the book's WIKI table (15 million rows) cost each nightly run and each
    partition of a CLI backfill most of a minute and gigabytes. A run now reads the rows near its range; what it
    gets is exactly what reading the whole store and cutting the range gave, for stores indexed by (date,
    ticker) or (ticker, date), sorted either way, per-ticker series, fixed or table format, dated with or
    without a zone, with a split column (undone with the splits after the range), for ranges inside, across or
    outside the store's days. A store of weekly or monthly bars, or with a row without a date, is refused for a
    short range as for the whole."""
    assume(zone is None or table_format or layout == "per_ticker")  # pandas cannot store the other zoned levels
    rng = np.random.default_rng(seed)
    days = pd.date_range("2015-01-01", "2020-12-31", freq=every)
    bars = _store_of_bars(rng, ["AAA", "BBB", "NA"][: 1 if layout == "per_ticker" else 3], days,
                          int(rng.integers(0, len(days))) if split else None)
    if zone is not None:
        # a close stamped late in New York is the next day in UTC
        bars["date"] = (bars["date"] + pd.Timedelta(hours=int(rng.integers(9, 24)))).dt.tz_localize(
            "America/New_York").dt.tz_convert(zone)
    if undated:
        bars.loc[bars.index[int(rng.integers(0, len(bars)))], "date"] = pd.NaT
    levels = {"date_ticker": ["date", "ticker"], "ticker_date": ["ticker", "date"], "per_ticker": ["date"]}[layout]
    stored = bars.drop(columns=[] if layout != "per_ticker" else ["ticker"]).set_index(levels)
    stored = stored.sort_values(["date"] if by_date or layout == "per_ticker" else ["ticker", "date"], kind="stable")
    folder = tmp_path_factory.mktemp("store")
    path = folder / ("AAA.h5" if layout == "per_ticker" else "assets.h5")
    stored.to_hdf(path, key="prices", format="table" if table_format else "fixed")
    start = (pd.Timestamp("2015-01-01") + pd.offsets.BDay(first)).date()
    end = (pd.Timestamp(start) + pd.offsets.BDay(length)).date()  # a weekday: most hold a bar
    got = read_price_files(str(folder), start, end)
    if every != "B" or undated:
        why = "empty values" if undated else "weekly or monthly bars"
        with pytest.raises(PriceSchemaError, match=why):
            _in_range(read_price_file(path), start, end, str(path), tz="America/New_York")
        assert why in got.attrs["file_errors"][sources.file_ticker(path)]
        return
    assert got.attrs["file_errors"] == {}
    whole = _in_range(read_price_file(path), start, end, str(path), tz="America/New_York")
    key = ["ticker", "date"]
    got = got.drop(columns=["source_file"]).sort_values(key).reset_index(drop=True)
    whole = whole.drop(columns=[NOT_NUMBERS]).astype({"ticker": "string"}).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, whole, check_like=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), tickers=st.lists(st.sampled_from(["AAA", "NA", "0700", "BRK-B"]), min_size=1,
                                                     max_size=3, unique=True),
       every=st.sampled_from(["B", "B", "W-FRI"]), flaw=st.sampled_from([None, "no_volume", "no_date", "intraday"]),
       beside=st.booleans(), first=st.integers(0, 2000), length=st.integers(1, 3000))
def test_the_files_first_last_day_and_tickers_come_from_an_hdf5_stores_index_as_from_its_bars(
        tmp_path_factory, seed, tickers, every, flaw, beside, first, length):
    """Every load of the project's definitions asks the files for their first day (where partitions start), and the
    plan for their last day and tickers: a WIKI-size store was read whole each time (most of a minute, gigabytes,
    in every run's process). A store indexed by (date, ticker) answers from its index and a read of its newest
    rows; the answer is the one a read of all its bars gives, beside CSV files, and a store a read refuses
    (missing volume, a row without a date, weekly bars, intraday stamps) adds nothing, as before."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(pd.Timestamp("2010-01-01") + pd.Timedelta(days=first), periods=length, freq=every)
    bars = _store_of_bars(rng, tickers, days, None)
    if flaw == "no_volume":
        bars = bars.drop(columns="volume")
    elif flaw == "no_date":
        bars.loc[bars.index[len(bars) // 2], "date"] = pd.NaT
    elif flaw == "intraday":
        bars = pd.concat([bars, bars.assign(date=bars["date"] + pd.Timedelta(hours=12))])
    folder = tmp_path_factory.mktemp("summary")
    bars.set_index(["date", "ticker"]).sort_index().to_hdf(folder / "assets.h5", key="quandl/wiki/prices")
    if beside:
        ticker_frame("ZZZ").to_csv(folder / "ZZZ.csv", index=False)
    whole = read_price_files(str(folder), sources.EARLIEST, sources.LATEST)
    want = (min(whole["date"]), max(whole["date"]), tuple(sorted(whole["ticker"].astype(str).unique()))) if len(
        whole) else None
    assert sources.price_files_summary(str(folder), tz="America/New_York") == want


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["add", "extend", "break", "remove", "touch", "garble_cache"]),
                                st.integers(0, 3)), min_size=1, max_size=6))
def test_the_files_summary_kept_between_processes_is_the_one_a_read_gives(tmp_path_factory, steps):
    """The files' first day, last day and tickers are kept on disk per file, so the next process (each load of
    the definitions, each run) answers without reading a folder again. Whatever happens to the folder between
    two asks (a file added, a nightly day appended, a file broken or removed, a file rewritten as it was, the
    cache file itself garbled), the answer is the one reading every file gives."""
    folder, cache = tmp_path_factory.mktemp("folder"), tmp_path_factory.mktemp("cache") / "summary.json"
    days = pd.bdate_range("2021-01-04", periods=30)

    def write(i: int, n: int) -> None:
        close = np.linspace(10, 12, n) * (i + 1)
        pd.DataFrame({"Date": days[:n].strftime("%Y-%m-%d"), "Open": close, "High": close + 1, "Low": close - 1,
                      "Close": close, "Volume": 1000}).to_csv(folder / f"T{i}.csv", index=False)

    write(0, 10)
    for op, i in steps:
        path = folder / f"T{i}.csv"
        if op == "add" or (op == "extend" and not path.exists()):
            write(i, 5 + i)
        elif op == "extend":
            write(i, len(pd.read_csv(path)) + 1 if path.read_text().startswith("Date") else 12)
        elif op == "break":
            path.write_text("nothing here\n")
        elif op == "remove" and len(list(folder.iterdir())) > 1:
            path.unlink(missing_ok=True)
        elif op == "touch" and path.exists():
            path.write_bytes(path.read_bytes())
        elif op == "garble_cache":
            cache.write_text("{\"half")
        want = sources.price_files_summary(str(folder))
        assert sources.price_files_summary(str(folder), cache=cache) == want
        assert sources.price_files_summary(str(folder), cache=cache) == want


def test_a_folder_read_once_answers_its_summary_without_reading_again(tmp_path, monkeypatch):
    """The second ask reads no file: Kaggle's 7,000 US stock files cost a minute at every load before."""
    for t in ("AAA", "BBB"):
        ticker_frame(t).to_csv(tmp_path / f"{t}.csv", index=False)
    cache = tmp_path / "cache" / "summary.json"
    first = sources.price_files_summary(str(tmp_path), cache=cache)
    monkeypatch.setattr(sources, "read_price_file", lambda *a, **k: pytest.fail("read a file again"))
    assert sources.price_files_summary(str(tmp_path), cache=cache) == first == (
        DATES[0].date(), DATES[-1].date(), ("AAA", "BBB"))


def test_a_month_of_the_books_store_reads_a_year_of_rows_not_all_of_them(tmp_path, monkeypatch):
    """WIKI's table is sorted by date: a month of it reads the rows of the year before it and the year from it (what
    the file's checks judge), not 20 years."""
    days = pd.bdate_range("2000-01-03", "2019-12-31")
    wiki = _store_of_bars(np.random.default_rng(0), ["AAA", "BBB"], days, None).set_index(["date", "ticker"]).sort_index()
    wiki.to_hdf(tmp_path / "assets.h5", key="quandl/wiki/prices")
    read = []
    real = sources._read_rows
    monkeypatch.setattr(sources, "_read_rows", lambda store, key, rows: read.append(rows) or real(store, key, rows))
    out = read_price_files(str(tmp_path), dt.date(2019, 6, 1), dt.date(2019, 6, 30))
    assert len(out) == len(wiki.loc["2019-06-01":"2019-06-30"])
    near = wiki.loc[(dt.date(2019, 6, 1) - dt.timedelta(days=sources.HDF_CONTEXT_DAYS)).isoformat():
                    (dt.date(2019, 6, 1) + dt.timedelta(days=sources.HDF_CONTEXT_DAYS)).isoformat()]
    assert read and read[0].stop - read[0].start == len(near) < len(wiki) / 10


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(1, 18), quotes=st.lists(st.booleans(), min_size=20, max_size=20), renamed=st.integers(1, 19),
       date_writer=st.sampled_from(["iso", "yyyymmdd"]))
def test_a_crsp_daily_file_reads_as_bars_keyed_by_permno(tmp_path_factory, at, quotes, renamed, date_writer):
    """CRSP's daily stock file (WRDS export): PERMNO keeps a name across ticker changes, PRC is negative on days
    without a trade (the bid/ask midpoint), OPENPRC, ASKHI, BIDLO and VOL are the bar, CFACPR the cumulative
    price factor. It was refused for missing columns; it reads as bars as traded, keyed by PERMNO, with the
    split in adj_close."""
    days = pd.bdate_range("2021-01-04", periods=20)
    close = 40 + np.arange(20, dtype=float)
    close[at:] /= 2  # a 2:1 split
    cfacpr = np.where(np.arange(20) < at, 2.0, 1.0)
    prc = np.where(quotes, -close, close)
    crsp = pd.DataFrame({"PERMNO": 10107, "date": DATE_WRITERS[date_writer](days),
                         "TICKER": np.where(np.arange(20) < renamed, "OLD", "NEW"), "BIDLO": close - 1,
                         "ASKHI": close + 1, "PRC": prc, "VOL": 1000.0, "RET": 0.0, "SHROUT": 5000,
                         "OPENPRC": close + 0.5, "CFACPR": cfacpr, "CFACSHR": cfacpr})
    folder = tmp_path_factory.mktemp("crsp")
    crsp.to_csv(folder / "dsf.csv", index=False)
    out = read_price_files(str(folder), days[0], days[-1])
    assert out.attrs["file_errors"] == {} and set(out["ticker"]) == {"10107"}
    out = out.set_index("date")
    np.testing.assert_allclose(out["close"].to_numpy(), close)
    np.testing.assert_allclose(out[["open", "high", "low"]].to_numpy(), np.c_[close + 0.5, close + 1, close - 1])
    np.testing.assert_allclose((out["adj_close"] / out["close"]).to_numpy(), 1 / cfacpr)
    validate_prices(out.reset_index().drop(columns=["source_file"]))
