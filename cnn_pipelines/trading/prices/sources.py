"""Price sources: functions that return the canonical long table (date, ticker, open, high, low, close, volume).

Prices are what the vendor reported (float64; volume in shares), with ``adj_close`` / ``stock_splits`` kept
where the vendor has them: ingestion turns those into each bar's adjustment (adjustments.py). The Dagster
resources wrapping these live in ``resources.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob as globlib
import gzip
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.calendar import to_date
from cnn_pipelines.trading.prices.adjustments import as_traded, unsplit
from cnn_pipelines.trading.prices.dates import session_dates
from cnn_pipelines.trading.prices.validation import CANONICAL_COLUMNS, PriceSchemaError

log = logging.getLogger(__name__)

_ALIASES = {
    # date_time: AmiBroker's "Date/Time"; ts_event: Databento; window_start: Polygon's flat files
    "date": "date", "datetime": "date", "timestamp": "date", "time": "date", "day": "date",
    "date_time": "date", "ts_event": "date", "window_start": "date", "trade_date": "date",
    # the bars of Polygon's and Alpaca's REST APIs, saved as they come: t, o, h, l, c, v (vw, n are dropped)
    "t": "date", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume",
    # code: EODHD's bulk exports ("AAPL.US"); ts_code: Tushare ("600519.SH")
    "ticker": "ticker", "symbol": "ticker", "asset": "ticker", "code": "ticker", "ts_code": "ticker",
    "open": "open", "high": "high", "low": "low", "close": "close",
    # Bloomberg's fields
    "px_open": "open", "px_high": "high", "px_low": "low", "px_last": "close", "px_volume": "volume",
    "adj_close": "adj_close", "adjclose": "adj_close", "adjusted_close": "adj_close",
    # Sharadar's SEP: closeadj (splits and dividends), close split-adjusted, closeunadj as traded
    "closeadj": "adj_close", "closeunadj": "close_unadj",
    # CRSP's daily stock file: PRC (negative: no trade, the bid/ask midpoint), OPENPRC, ASKHI, BIDLO, VOL, CFACPR
    "prc": "crsp_prc", "openprc": "open", "askhi": "high", "bidlo": "low",
    "volume": "volume", "vol": "volume",
    "stock_splits": "stock_splits", "splits": "stock_splits", "split": "stock_splits",
}
_TICKER_FALLBACK = "name"  # Kaggle's S&P 500 files name the ticker "Name"; used only where no ticker column is
# kept beside the canonical columns: what adjustments derive from, and the close as traded where the vendor's
# close is split-adjusted
ACTION_COLUMNS = ["adj_close", "stock_splits", "close_unadj", "crsp_prc", "cfacpr"]


# where the ticker comes from, first found first: CRSP's PERMNO (the identity a ticker change keeps), a ticker
# column, else "Name"
_TICKER_KEYS = ("permno", "ticker", _TICKER_FALLBACK)


def ticker_key(names: Sequence[str]) -> str | None:
    """The normalized column name the ticker is read from, of ``names`` (normalized); None for a per-ticker file."""
    return next((k for k in _TICKER_KEYS if k in names), None)


def _normalize_name(name: object) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    return _ALIASES.get(key, key)


def normalize_columns(df: pd.DataFrame, source: str, ticker: str | None = None) -> pd.DataFrame:
    """Map vendor column names (Date, Adj Close, Symbol, Stock Splits, ...) to the canonical schema.

    Prices stay as the vendor reported them: ``adj_close`` (and ``stock_splits``) are kept beside the canonical
    columns so ingestion can derive each bar's adjustment (adjustments.py); nothing is rescaled here. Unnamed
    columns (a saved pandas index) are dropped. ``ticker`` fills a missing ticker column (one file per ticker).
    Raises PriceSchemaError naming ``source`` and the column."""
    out = df.copy()
    if out.index.name is not None and _normalize_name(out.index.name) == "date" and "date" not in map(_normalize_name, out.columns):
        out = out.reset_index()
    out = out.loc[:, [not (str(c).startswith("Unnamed:") or str(c).strip() == "") for c in out.columns]]
    names = [_normalize_name(c) for c in out.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PriceSchemaError(f"{source}: columns {dupes} appear more than once after normalising {list(df.columns)}")
    key = ticker_key(names)  # a column the ticker is not taken from (CRSP's TICKER beside PERMNO) is left out
    names = ["ticker" if n == key else "ticker_symbol" if n == "ticker" else n for n in names]
    out.columns = names
    if "crsp_prc" in names and "close" not in names:
        out["close"] = out["crsp_prc"]  # its sign is dropped with the numbers (adjustments.as_traded)
    if "ticker" not in out.columns:
        if ticker is None:
            raise PriceSchemaError(f"{source}: missing column 'ticker' (and no ticker in the file name); found {list(df.columns)}")
        out["ticker"] = ticker
    missing = [c for c in CANONICAL_COLUMNS if c not in out.columns]
    if missing:
        raise PriceSchemaError(f"{source}: missing column(s) {missing}; found {list(df.columns)}")
    return out[CANONICAL_COLUMNS + [c for c in ACTION_COLUMNS if c in out.columns]]


def _in_range(df: pd.DataFrame, start: dt.date, end: dt.date, source: str, tz: str | None = None,
              date_order: str | None = None) -> pd.DataFrame:
    """Rows dated in [start, end], dates as the exchange's session dates (see dates.py); a ``stock_splits``
    column is undone over the whole file first (adjustments.unsplit)."""
    dates = session_dates(df["date"], tz=tz, date_order=date_order, source=source)
    if dates.isna().any():
        raise PriceSchemaError(f"{source}: column 'date' has {int(dates.isna().sum())} empty values")
    _refuse_intraday(df, dates, source)
    _refuse_sparse(df, dates, source)
    df = unsplit(as_traded(df.assign(date=dates)))
    keep = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
    out = df.loc[keep].copy()
    out["date"] = dates[keep].dt.date
    return out


def _refuse_intraday(df: pd.DataFrame, dates: pd.Series, source: str) -> None:
    """A file of intraday bars (several stamps per ticker and session) is refused with what to do: read as
    daily bars, every day's bars would disagree with each other and each day be quarantined as a conflict."""
    keys = pd.DataFrame({"ticker": df["ticker"].to_numpy(), "day": dates.to_numpy()})
    if not keys.duplicated().any():
        return
    stamps = df["date"].astype(str).groupby([df["ticker"].astype(str), dates]).nunique()
    if len(stamps) and stamps.median() > 1:
        (ticker, day), n = stamps.idxmax(), int(stamps.max())
        raise PriceSchemaError(
            f"{source}: intraday bars ({int(stamps.median())} per ticker and day; {ticker} on {day.date()}: {n}): "
            f"the pipeline reads one bar per session; resample to daily bars first (open first, high max, low min, "
            f"close last, volume sum)")


SPARSE_SHARE = 0.25  # bars on at most a quarter of the weekdays a ticker spans: weekly or monthly bars
SPARSE_MIN_BARS = 8  # fewer bars say nothing about their frequency (a nightly day, a new listing)


def _refuse_sparse(df: pd.DataFrame, dates: pd.Series, source: str) -> None:
    """A file of weekly or monthly bars is refused, naming the share of weekdays its tickers have a bar on.
    Read as daily bars, each week became one "session": indicators ran over weeks under daily names, and no
    label was ever realized (the next session never has a bar), so research failed on "0 training rows". Judged
    per ticker only where the file's days together are sparse: a long file whose tickers fill the weekdays
    between them is read, and the universe keeps a sparse name out."""
    days = dates.to_numpy().astype("datetime64[D]")
    distinct = np.unique(days)
    if len(distinct) < SPARSE_MIN_BARS or len(distinct) > SPARSE_SHARE * (np.busday_count(distinct[0], distinct[-1]) + 1):
        return  # the file's days together are dense (every daily file: the common case costs one sort)
    codes, tickers = pd.factorize(df["ticker"].astype(str))
    first = np.full(len(tickers), np.datetime64("2262-01-01"), dtype="datetime64[D]")
    last = np.full(len(tickers), np.datetime64("1678-01-01"), dtype="datetime64[D]")
    np.minimum.at(first, codes, days)
    np.maximum.at(last, codes, days)
    size = np.bincount(codes, minlength=len(tickers))
    judged = size >= SPARSE_MIN_BARS
    if not judged.any():
        return
    share = size[judged] / np.maximum(np.busday_count(first[judged], last[judged]) + 1, 1)
    if np.median(share) > SPARSE_SHARE:
        return
    i = int(np.argmin(share))
    ticker, n, a, b = tickers[judged][i], size[judged][i], first[judged][i], last[judged][i]
    raise PriceSchemaError(
        f"{source}: bars on {np.median(share):.0%} of the weekdays its tickers span ({ticker}: {n} bars from {a} "
        f"to {b}): weekly or monthly bars, or names that trade on fewer than one day in four; the pipeline needs "
        f"daily bars, one per session")


# ----------------------------------------------------------------------------------------------- files


# vendors write .CSV as often as .csv; .h5: an HDF5 store such as the book's assets.h5
PRICE_FILE = re.compile(r"\.(csv|csv\.gz|parquet|h5|hdf5|hdf)$", re.IGNORECASE)
HDF_FILE = re.compile(r"\.(h5|hdf5|hdf)$", re.IGNORECASE)


def ignored_files(path: str) -> list[str]:
    """Names of the files in a price folder that are not read (not CSV/Parquet, e.g. a README), to be named in
    the run's log rather than passed over in silence; none for a single file or a glob."""
    p = Path(path)
    if not p.is_dir():
        return []
    return sorted(f.name for f in p.iterdir() if f.is_file() and not PRICE_FILE.search(f.name))


def list_price_files(path: str) -> list[Path]:
    """Files a ``files`` source reads: a directory's CSV (.csv, .csv.gz) and Parquet files in any letter case, or
    a glob pattern, sorted."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if PRICE_FILE.search(f.name))
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(f) for f in globlib.glob(path))
    files = [f for f in files if f.is_file()]
    if not files:
        others = ignored_files(path)
        text = [f for f in others if f.lower().endswith(".txt")]
        hint = (f"; it holds {len(text)} .txt file(s) (e.g. {text[0]}): point price_files at a glob such as "
                f"'{Path(path) / '*.txt'}' to read them as CSV" if text else "")
        raise FileNotFoundError(f"no CSV/Parquet price files found at {path!r}{hint}")
    return files


def read_price_file(path: Path, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """Read one CSV/Parquet/HDF5 price file into canonical columns (ticker from the file name if absent).

    Long files, per-ticker files and files with columns on two levels (fields x tickers, as
    ``yfinance.download(...)`` returns them and ``to_csv`` / ``to_parquet`` save them) are all read. ``start`` and
    ``end`` let an HDF5 store skip the rows far outside them (hdf_price_table); other files are read whole."""
    name = path.name
    parquet = name.lower().endswith(".parquet")
    if HDF_FILE.search(name):
        raw = hdf_price_table(path, start, end)
        return numeric_values(normalize_columns(raw, source=str(path), ticker=file_ticker(path)))
    try:
        if parquet:
            raw = pd.read_parquet(path)
        else:
            head = _head(path)
            dialect = csv_dialect(head)
            if _two_level_header(head, dialect["sep"]):
                raw = pd.read_csv(path, header=[0, 1], index_col=0, **dialect)
            else:
                raw = _tickers_as_written(pd.read_csv(path, **dialect), path, dialect)
    except Exception as exc:  # pandas/pyarrow raise many types for corrupt files
        raise PriceSchemaError(f"{path}: cannot be read as {'Parquet' if parquet else 'CSV'} ({exc})") from exc
    decimal = "." if parquet else dialect.get("decimal", ".")
    if isinstance(raw.columns, pd.MultiIndex):
        return numeric_values(two_level_to_long(raw, source=str(path)), decimal)
    raw = raw.reset_index(drop=raw.index.name is None and not isinstance(raw.index, pd.MultiIndex))
    # a blank trailing line (",,,,,") is no bar: drop rows with nothing in them before reading dates
    raw = raw.dropna(how="all").reset_index(drop=True)
    return numeric_values(normalize_columns(raw, source=str(path), ticker=file_ticker(path)), decimal)


def hdf_price_table(path: Path, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """The one table of daily bars in an HDF5 store (index levels as columns): the book keeps Quandl's WIKI prices
    under ``quandl/wiki/prices`` in ``assets.h5``, indexed by (date, ticker), beside tables that are no bars
    (``quandl/wiki/stocks``) or one series without tickers (``sp500/stooq``). A table with a ticker is preferred;
    with several such, the store is refused, naming them. With ``start`` and ``end``, a table whose index holds
    the date is read only over the rows near them (_rows_near: a year before ``start``, to a day after ``end``;
    to its last row where it has a split column, as undoing a split needs the later ones); the caller cuts the
    range."""
    try:
        with pd.HDFStore(path, mode="r") as store:
            key, names = _bars_key(store, path)
            rows = (_rows_near(store, key, start, end, to_last="stock_splits" in names)
                    if start is not None and end is not None else None)
            table = _read_rows(store, key, rows) if rows is not None else store[key]
    except PriceSchemaError:
        raise
    except Exception as exc:  # a corrupt store, or pytables missing
        raise PriceSchemaError(f"{path}: cannot be read as an HDF5 store ({type(exc).__name__}: {exc})") from exc
    return table.reset_index() if any(n is not None for n in table.index.names) else table


def _bars_key(store: pd.HDFStore, path: Path) -> tuple[str, set[str]]:
    """The key of the store's one table of daily bars (see hdf_price_table) and its normalized names;
    PriceSchemaError naming the keys."""
    keys = sorted(store.keys())
    names = {k: _stored_names(store, k) for k in keys}
    bars = [k for k in keys if _BARS <= names[k]]
    chosen = [k for k in bars if "ticker" in names[k]] or bars
    if len(chosen) != 1:
        what = ("no table of daily bars (date, open, high, low, close, volume)" if not chosen else
                f"{len(chosen)} tables of daily bars ({', '.join(chosen)}); write the one to read to a file "
                f"of its own (pandas: store[key].to_hdf(path, key=key))")
        raise PriceSchemaError(f"{path}: {what}; keys: {', '.join(keys) or 'none'}")
    return chosen[0], names[chosen[0]]


_BARS = {"date", "open", "high", "low", "close", "volume"}
# rows read before a range from an HDF5 store, and at least as long after its start: a year of bars or more,
# so the file's checks (weekly or monthly bars, intraday stamps) judge enough bars wherever the range lies
HDF_CONTEXT_DAYS = 400
HDF_LATE_DAYS = 1  # and after it: a close stamped in UTC can fall on the day after its session


def _rows_near(store: pd.HDFStore, key: str, start: dt.date, end: dt.date, to_last: bool) -> slice | None:
    """The rows of a stored table dated from HDF_CONTEXT_DAYS before ``start`` to HDF_LATE_DAYS after ``end`` or
    HDF_CONTEXT_DAYS after ``start``, whichever is later (through its last row if ``to_last``), found from its
    index alone: the first to the last such row. A table sorted by date, as WIKI's is, reads a year or two
    instead of 15 million rows; one sorted by ticker reads nearly whole. None where the index holds no dates
    (the table is read whole)."""
    lo = pd.Timestamp(max(start - dt.timedelta(days=HDF_CONTEXT_DAYS), dt.date(1678, 1, 1)))
    hi = pd.Timestamp(min(max(end + dt.timedelta(days=HDF_LATE_DAYS), start + dt.timedelta(days=HDF_CONTEXT_DAYS))
                          + dt.timedelta(days=1), dt.date(2262, 1, 1)))
    try:
        near = _dated_between(store, key, lo, hi)
    except Exception:  # noqa: BLE001 - a layout this does not know is read whole, as before
        return None
    if near is None:
        return None
    rows = np.flatnonzero(near)
    if not len(rows):
        return slice(0, 0)
    return slice(int(rows[0]), len(near) if to_last else int(rows[-1]) + 1)


def _read_rows(store: pd.HDFStore, key: str, rows: slice) -> pd.DataFrame:
    """Rows ``rows`` of a stored table. pandas (2.x) slices a fixed-format table's MultiIndex levels with its rows,
    leaving an index in an inconsistent state, so such a table is put together here from its whole index and its
    values' rows; a layout this does not expect is read whole (the caller cuts the range either way)."""
    st = store.get_storer(key)
    if not _fixed_multiindex(st):
        return store.select(key, start=rows.start, stop=rows.stop)
    try:
        index, columns = st.read_index("axis1")[rows], st.read_index("axis0")
        parts = []
        for i in range(st.nblocks):
            values = st.read_array(f"block{i}_values", start=rows.start, stop=rows.stop)
            items = columns[columns.get_indexer(st.read_index(f"block{i}_items"))]
            parts.append(pd.DataFrame(values.T, columns=items, index=index, copy=False))
        return pd.concat(parts, axis=1)[columns] if parts else pd.DataFrame(index=index, columns=columns)
    except Exception:  # noqa: BLE001 - another pandas' layout: whole, as before
        log.warning("%s: %s read whole (its rows could not be read by range)", store.filename, key)
        return store[key]


def _fixed_multiindex(st) -> bool:
    """Whether a stored table is fixed-format with a MultiIndex (WIKI's (date, ticker)): its index is read whole."""
    return not st.is_table and getattr(st.attrs, "axis1_variety", None) == "multi"


def _level(names, name: str) -> int | None:
    """The position of the index level whose normalized name is ``name``; None if none is."""
    return next((i for i, n in enumerate(names) if n is not None and _normalize_name(n) == name), None)


def _dated_between(store: pd.HDFStore, key: str, lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray | None:
    """Per row of a stored table, whether its date (the index level named date; UTC where stored with a zone)
    lies in [lo, hi), read without its values; None where no such level holds timestamps, or a row has none."""
    st = store.get_storer(key)
    codes = None
    if st.is_table:
        names = st.levels if isinstance(st.levels, list) else [_table_index_name(st)]
        found = [n for n in names if n is not None and _normalize_name(n) == "date"]
        if not found:
            return None
        values = pd.Index(store.select_column(key, found[0] if isinstance(st.levels, list) else "index"))
    else:
        index = st.read_index("axis1")
        if isinstance(index, pd.MultiIndex):
            at = _level(index.names, "date")
            if at is None:
                return None
            values, codes = index.levels[at], index.codes[at]  # a mask per date, then per row
        elif index.name is not None and _normalize_name(index.name) == "date":
            values = index
        else:
            return None
    if not isinstance(values, pd.DatetimeIndex):
        return None
    if values.hasnans or (codes is not None and (codes < 0).any()):
        return None  # a row without a date: the whole read refuses the store, naming the count
    values = values.tz_convert(None) if values.tz is not None else values
    within = np.asarray((values >= lo) & (values < hi))
    return within if codes is None else within[codes]


def _table_index_name(st) -> str | None:
    """The name of a table-format store's one index (``date`` for a per-ticker series), from its stored info."""
    return (st.info.get("index") or {}).get("index_name")


def _stored_names(store: pd.HDFStore, key: str) -> set[str]:
    """Normalized column and index names of a stored DataFrame, read without its rows (a 15-million-row WIKI
    table is read once, when chosen); empty for anything else."""
    try:
        st = store.get_storer(key)
        if st.is_table:
            levels = st.levels if isinstance(st.levels, list) else [_table_index_name(st)]
            names = [*(c for _, cols in st.non_index_axes for c in cols), *levels]
        elif getattr(st.attrs, "pandas_type", None) == "frame":
            index_names = [getattr(node._v_attrs, "name", None) for name, node in st.group._v_children.items()
                           if name == "axis1" or name.startswith("axis1_level")]
            names = [*st.read_index("axis0"), *index_names]
        else:
            return set()
    except Exception:  # noqa: BLE001 - a node pandas cannot describe is no table of bars
        return set()
    return {_normalize_name(n) for n in names if n is not None}


def _tickers_as_written(raw: pd.DataFrame, path: Path, dialect: dict) -> pd.DataFrame:
    """The ticker column as the file writes it. pandas reads ``NA`` (National Bank of Canada on the TSX) and
    ``NULL`` as missing, and a column of numeric codes (Tokyo's ``7203``, Hong Kong's ``0700``) as integers,
    losing the leading zero; such a column is read again as text, with nothing taken for missing but blanks."""
    names = [_normalize_name(c) for c in raw.columns]
    key = ticker_key(names)
    cols = [c for c, n in zip(raw.columns, names) if n == key]
    if len(cols) != 1:
        return raw  # none (a per-ticker file), or several: normalize_columns names the problem
    col = cols[0]
    if pd.api.types.is_object_dtype(raw[col].dtype) and raw[col].notna().all():
        return raw
    options = {k: v for k, v in dialect.items() if k != "dtype"}
    text = pd.read_csv(path, usecols=[col], dtype=str, keep_default_na=False, **options)[col]
    out = raw.copy()
    out[col] = text.str.strip().replace("", None).to_numpy(dtype=object)
    return out


NUMERIC_COLUMNS = ["open", "high", "low", "close", "volume", *ACTION_COLUMNS]
NOT_NUMBERS = "_not_numbers"  # per row: the value columns whose text was no number ("close '-'"), else missing
_US_THOUSANDS = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
_DECIMAL_COMMA_NUMBER = r"^-?\d+,(?:\d{1,2}|\d{4,})$"  # a comma not before three digits: no thousands separator


def numeric_values(df: pd.DataFrame, decimal: str = ".") -> pd.DataFrame:
    """Value columns as float64, per file, so one file's text cannot fail the whole batch.

    Quoted US thousands (``"1,234.56"``, ``"12,345,678"``) are numbers where the column leaves no doubt (no
    value with a decimal comma, and some with a decimal point or two groups, or the column is volume): a
    column of lone ``"1,234"`` could hold decimal commas. Any other text (``-``, ``n.a.``, ``1.2M``) is a
    missing value, so validation holds back that ticker's day ("NaN price or volume"); the row's
    ``NOT_NUMBERS`` column names what the text was, for the run to report. ``decimal=","`` (European files):
    pandas leaves a column with any such text as strings, so its numbers are read here (``1.234,56``)."""
    out = df.copy()
    issues = pd.Series(pd.NA, index=out.index, dtype="string")
    for col in [c for c in NUMERIC_COLUMNS if c in out.columns]:
        if pd.api.types.is_numeric_dtype(out[col].dtype):
            out[col] = out[col].astype("float64")
            continue
        original = out[col].astype("string").str.strip().replace("", pd.NA)
        text, present = original, original.dropna()
        grouped = present.str.fullmatch(_US_THOUSANDS)
        if decimal == ",":
            text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        elif (grouped.any() and not bool(present.str.contains(_DECIMAL_COMMA_NUMBER).any())
                and (col == "volume" or bool(present[grouped].str.contains(r"\.|,\d{3},").any()))):
            text = text.mask(text.str.fullmatch(_US_THOUSANDS).fillna(False), text.str.replace(",", "", regex=False))
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & original.notna()
        named = col + " " + original.where(bad).map(repr, na_action="ignore").astype("string")
        issues = issues.where(~bad, issues.fillna("").str.cat(named, sep=", ").str.lstrip(", "))
        out[col] = values.astype("float64")
    out[NOT_NUMBERS] = issues
    return out


_DECIMAL_COMMA = re.compile(r"(?:^|;)\s*-?\d+,\d+\s*(?:;|$)")


def _head(path: Path, lines: int = 6) -> list[str]:
    """The first lines of a CSV (gzip or not), for sniffing its dialect."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:  # an Excel BOM is no part of a name
            return [line.rstrip("\r\n") for _, line in zip(range(lines), fh)]
    except OSError:
        return []  # the full read names what is wrong with the file


def csv_dialect(head: list[str]) -> dict:
    """How to read a vendor CSV, from its first lines (``_head``): its delimiter from the header line (comma, or
    a semicolon or tab where the header has no comma), and its number format. Semicolon files are European exports: decimal comma, and a point
    between thousands where numbers carry one (dates stay text, so ``04.01.2021`` is not read as a number).
    Comma files may quote numbers with thousands separators (``"1,234.56"``): ``numeric_values`` reads them
    where the column leaves no doubt (pandas' ``thousands=","`` would read a quoted ``"101,25"`` as 10125)."""
    header = head[0] if head else ""
    if "," in header or not header:
        return {"sep": ","}  # quoted thousands ("1,234.56") are read per column by numeric_values, not guessed
    sep = ";" if ";" in header else "\t" if "\t" in header else ","
    if sep != ";" or not any(_DECIMAL_COMMA.search(line) for line in head[1:]):
        return {"sep": sep}
    dates = [c for c in header.split(";") if _normalize_name(c.strip('"')) == "date"]
    return {"sep": ";", "decimal": ",", "thousands": ".", "dtype": {c.strip('"'): str for c in dates}}


def _two_level_header(head: list[str], sep: str) -> bool:
    """Whether a CSV holds columns on two levels as pandas writes them (``yfinance.download(...).to_csv()``): a
    row of fields (``Price,Close,High,...``) and a row of tickers (``Ticker,AAPL,AAPL,...``), in either order,
    then the index's name alone (``Date,,,``). Read as one header, the dates would sit under ``Price``."""
    rows = list(csv.reader(head[:3], delimiter=sep))
    return (len(rows) == 3 and len(rows[0]) > 1 and _normalize_name(rows[2][0]) == "date"
            and not any(c.strip() for c in rows[2][1:]) and all(c.strip() for r in rows[:2] for c in r[1:]))


def two_level_to_long(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Bars in columns on two levels, fields (Open, Close, Adj Close, ...) and tickers in either order, with the
    dates as index (yfinance's ``download``), as the canonical long table. A ticker's rows with no field
    (before it listed, after it delisted) are the layout's padding, not bars, and are left out."""
    if frame.columns.nlevels != 2:
        raise PriceSchemaError(f"{source}: columns on {frame.columns.nlevels} levels; expected fields and tickers")
    field_level = [i for i in (0, 1) if "close" in {_normalize_name(v) for v in frame.columns.get_level_values(i)}]
    if len(field_level) != 1:
        levels = [sorted({str(v) for v in frame.columns.get_level_values(i)})[:8] for i in (0, 1)]
        raise PriceSchemaError(f"{source}: columns on two levels, but not one level of fields (Open, High, Low, "
                               f"Close, Volume) and one of tickers; found {levels}")
    long = frame.stack(level=1 - field_level[0], future_stack=True)
    long.index = long.index.set_names(["date", "ticker"])
    long = long.reset_index()
    long.columns = [str(c) for c in long.columns]
    long = normalize_columns(long, source=source)
    return long.dropna(subset=["open", "high", "low", "close", "volume"], how="all").reset_index(drop=True)


def file_ticker(path: Path) -> str:
    """The ticker a per-ticker file stands for: its name without extension, upper case (``aapl.us.txt``, picked
    by a glob, is ``AAPL.US``)."""
    name = PRICE_FILE.sub("", path.name)
    return (name if name != path.name else re.sub(r"\.[A-Za-z]{1,4}$", "", name)).upper()


def read_price_files(path: str, start: str | dt.date, end: str | dt.date, tz: str | None = None,
                     date_order: str | None = None) -> pd.DataFrame:
    """All bars in [start, end] from the files at ``path``, with a ``source_file`` column (the file's name).

    Dates are read per file (dates.py): ``tz`` is the exchange's time zone, ``date_order`` decides numeric
    dates that read both ways. A file that cannot be read (corrupt, missing columns, unreadable or ambiguous
    dates) does not stop the others: its error, naming the file and column, goes to
    ``out.attrs["file_errors"]`` ({ticker: message}, the ticker being the file name) for the caller to
    quarantine or, in strict mode, raise. Text where a number belongs (``-``) is a missing value (its day is
    held back by validation) and ``out.attrs["not_numbers"]`` ({file: what and where}) says so."""
    start_d, end_d = to_date(start), to_date(end)
    frames, errors, notes = [], {}, {}
    for f in list_price_files(path):
        try:
            frame = _in_range(read_price_file(f, start_d, end_d), start_d, end_d, str(f), tz=tz, date_order=date_order)
        except PriceSchemaError as exc:
            errors[file_ticker(f)] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the others; its ticker is quarantined
            errors[file_ticker(f)] = f"{f}: cannot be read ({type(exc).__name__}: {exc})"
            continue
        issues = frame.pop(NOT_NUMBERS).dropna()
        if len(issues):
            days = frame.loc[issues.index, "date"].astype(str)
            shown = "; ".join(f"{d} {i}" for d, i in zip(days.head(3), issues.head(3)))
            notes[f.name] = f"{len(issues)} bar(s) with text for a number, read as missing: {shown}"
        frames.append(frame.assign(source_file=f.name))
    out = (pd.concat(frames, ignore_index=True) if frames
           else empty_prices().assign(source_file=pd.Series([], dtype="string")))
    out = out.astype({"ticker": "string", "source_file": "string"})
    out.attrs["not_numbers"] = notes
    out.attrs["file_errors"] = errors
    out.attrs["ignored_files"] = ignored_files(path)
    return out


EARLIEST, LATEST = dt.date(1800, 1, 1), dt.date(2200, 1, 1)  # a range that holds every bar of any file


def price_files_summary(path: str, tz: str | None = None, date_order: str | None = None,
                        cache: Path | None = None) -> tuple[dt.date, dt.date, tuple[str, ...]] | None:
    """First and last session date of the files' bars and their tickers, as a read of all their bars gives them
    (unreadable files left out); None where they hold no bar. Every load of the definitions asks (partitions
    start on the first day), so each file's answer is kept in ``cache`` (a JSON file) under its path, size,
    modification time, the settings and this reader's code: a folder read once answers at the next load without
    reading it (Kaggle's 7,000 files cost a minute each time), and a file that changes is read again alone. An
    HDF5 store whose index holds the dates answers from its index (hdf_index_summary)."""
    known = _read_cache(cache)
    keys = {_cache_key(f, tz, date_order): f for f in list_price_files(path)}
    fresh = {key: _file_summary(f, tz, date_order) for key, f in keys.items() if key not in known}
    if fresh and cache is not None:
        _write_cache(cache, {**known, **fresh}, keep=set(keys))
    answers = [a for a in (known.get(key, fresh.get(key)) for key in keys) if a]
    if not answers:
        return None
    return (dt.date.fromisoformat(min(a[0] for a in answers)), dt.date.fromisoformat(max(a[1] for a in answers)),
            tuple(sorted(set().union(*(a[2] for a in answers)))))


def _file_summary(f: Path, tz: str | None, date_order: str | None) -> list | None:
    """[first, last (ISO dates), tickers] of one file's bars; None where it holds none or cannot be read."""
    quick = hdf_index_summary(f, tz, date_order) if HDF_FILE.search(f.name) else None
    if quick is None:
        try:
            df = _in_range(read_price_file(f), EARLIEST, LATEST, str(f), tz=tz, date_order=date_order)
        except Exception:  # noqa: BLE001 - an unreadable file holds no bar here; a run names it
            return None
        quick = (min(df["date"]), max(df["date"]), set(df["ticker"].dropna().astype(str))) if len(df) else ()
    return [quick[0].isoformat(), quick[1].isoformat(), sorted(quick[2])] if quick else None


def _reader_version() -> str:
    """A digest of the modules that decide what a file reads as: a cached answer from other code is not used."""
    import hashlib

    from cnn_pipelines.trading.prices import adjustments, dates

    digest = hashlib.sha256()
    for module in (__file__, dates.__file__, adjustments.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


_READER = _reader_version()


def _cache_key(f: Path, tz: str | None, date_order: str | None) -> str:
    stat = f.stat()
    return f"{f.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{tz}|{date_order}|{_READER}"


def _read_cache(cache: Path | None) -> dict:
    try:
        known = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    except (OSError, ValueError):
        return {}  # unreadable or half-written by hand: read the files again
    return known if isinstance(known, dict) else {}


def _write_cache(cache: Path, entries: dict, keep: set[str]) -> None:
    """Atomically: the answers for the files just listed, and those for files elsewhere (other folders) that still
    exist, read by this code; a file's older entries (before it changed) are dropped."""
    paths = {k.split("|", 1)[0] for k in keep}
    kept = {k: v for k, v in entries.items() if k in keep or (
        k.endswith(_READER) and (p := k.split("|", 1)[0]) not in paths and Path(p).exists())}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept))
        os.replace(tmp, cache)
    except OSError as exc:  # a read-only home: answers are computed each time, as before
        log.warning("price files' summary not cached at %s (%s)", cache, exc)


def hdf_index_summary(path: Path, tz: str | None, date_order: str | None) -> tuple | None:
    """(first, last, tickers) of an HDF5 store's table of bars from its index alone (dates as session dates);
    the store is then read over its last days, so that a store a read refuses (missing columns, weekly bars,
    intraday stamps) gives () as a refused file does. None where the index does not hold dates and tickers
    (the store is read whole), or holds a row without a date."""
    try:
        with pd.HDFStore(path, mode="r") as store:
            st = store.get_storer(_bars_key(store, path)[0])
            if not _fixed_multiindex(st):
                return None  # per-ticker series and table-format stores: small enough, or read by column
            index = st.read_index("axis1")
    except Exception:  # noqa: BLE001 - the whole read names what is wrong with it
        return None
    day, tick = _level(index.names, "date"), _level(index.names, "ticker")
    if day is None or tick is None:
        return None
    if not isinstance(index.levels[day], pd.DatetimeIndex) or (index.codes[day] < 0).any():
        return None
    used = np.unique(index.codes[day])
    if not len(used):
        return ()
    sessions = session_dates(pd.Series(index.levels[day][used]), tz=tz, date_order=date_order, source=str(path))
    first, last = sessions.min().date(), sessions.max().date()
    try:
        _in_range(read_price_file(path, last, last), last, last, str(path), tz=tz, date_order=date_order)
    except Exception:  # noqa: BLE001 - refused: no bar of it is read
        return ()
    codes = np.unique(index.codes[tick])
    names_used = pd.Series(index.levels[tick][codes[codes >= 0]]).dropna().astype(str)
    return first, last, set(names_used)


# ----------------------------------------------------------------------------------------------- yahoo

Downloader = Callable[..., pd.DataFrame]


def _yf_download(**kwargs) -> pd.DataFrame:
    import yfinance as yf

    return yf.download(**kwargs)


def yahoo_frame_to_long(frame: pd.DataFrame, tickers: Sequence[str]) -> pd.DataFrame:
    """Convert yfinance output (multi-index columns (Price, Ticker) or (Ticker, Price), or flat columns for
    one ticker) into the canonical long table. Tickers with no rows are simply absent."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=CANONICAL_COLUMNS)
    if isinstance(frame.columns, pd.MultiIndex):
        return two_level_to_long(frame, source="yahoo")
    if len(tickers) != 1:
        raise PriceSchemaError(f"yahoo: flat columns {list(frame.columns)} but {len(tickers)} tickers requested")
    long = frame.rename_axis("date").reset_index()
    long["ticker"] = tickers[0]
    long.columns = [str(c) for c in long.columns]
    long = normalize_columns(long, source="yahoo")
    long = long.dropna(subset=["open", "high", "low", "close", "volume"], how="all")
    return long


def download_yahoo(
    tickers: Sequence[str],
    start: str | dt.date,
    end: str | dt.date,
    chunk_size: int = 50,
    max_retries: int = 4,
    backoff_seconds: float = 2.0,
    downloader: Downloader = _yf_download,
    sleep: Callable[[float], None] = time.sleep,
    through: str | dt.date | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Batch-download daily bars with Adj Close in chunks, retrying each chunk with exponential backoff.

    Bars keep yfinance's Close, Adj Close and Stock Splits. yfinance split-adjusts Close up to the download
    day, so the download runs ``through`` that day (default: ``end``) and every split it reports after a bar
    is undone (``adjustments.unsplit``) before the rows are cut to [start, end]: the bars are what traded.

    Returns the canonical table for [start, end] and the tickers that returned no rows (reported, never
    silently dropped). Raises the last error if a chunk fails ``max_retries`` times.
    """
    start_d, end_d = to_date(start), to_date(end)
    last_d = max(end_d, to_date(through)) if through is not None else end_d
    tickers = list(dict.fromkeys(t.strip().upper() for t in tickers if t.strip()))
    if not tickers:
        raise ValueError("yahoo: no tickers given")
    frames = []
    for i in range(0, len(tickers), chunk_size):
        chunk = tickers[i : i + chunk_size]
        for attempt in range(max_retries):
            try:
                raw = downloader(
                    tickers=chunk, start=start_d.isoformat(), end=(last_d + dt.timedelta(days=1)).isoformat(),
                    auto_adjust=False, actions=True, group_by="column", threads=True, progress=False,
                )
                frames.append(yahoo_frame_to_long(raw, chunk))
                break
            except PriceSchemaError:
                raise
            except Exception as exc:  # network errors, rate limits: retry with backoff
                if attempt == max_retries - 1:
                    raise RuntimeError(f"yahoo: chunk {chunk[:3]}... failed after {max_retries} tries: {exc}") from exc
                wait = backoff_seconds * 2**attempt
                log.warning("yahoo chunk failed (%s); retrying in %.1fs", exc, wait)
                sleep(wait)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CANONICAL_COLUMNS)
    out = _in_range(out, start_d, end_d, "yahoo") if len(out) else out
    present = set(out["ticker"].astype(str)) if len(out) else set()
    missing = [t for t in tickers if t not in present]
    return out.astype({"ticker": "string"}), missing


def empty_prices() -> pd.DataFrame:
    """Canonical empty table with canonical dtypes."""
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype="object"),
            "ticker": pd.Series([], dtype="string"),
            **{c: pd.Series([], dtype="float64") for c in ["open", "high", "low", "close", "volume"]},
        }
    )

