"""Vendor date columns to exchange session dates.

What vendors write, and what it becomes (always the exchange's local calendar date of the bar):

- dates or naive timestamps (``2020-01-02``, ``2020/1/2 16:00:00``, ``20200102``): the date as written;
- timestamps with an offset, fixed or changing with daylight saving (``-05:00`` / ``-04:00``) or ``Z``:
  converted to the exchange's time zone, then dated. A stamp at midnight in its own offset labels a date
  (``2020-01-02T00:00:00Z`` is the bar of 2020-01-02, not New York's evening of the 1st), so it keeps the
  date as written;
- integers of 9 to 19 digits: seconds, milliseconds, microseconds or nanoseconds since 1970 in UTC, by their
  length (APIs, Polygon's and Databento's files), dated like a ``Z`` timestamp: in the exchange's zone, a UTC
  midnight labelling its date;
- numeric day/month dates (``03.04.2020``, ``04/03/2020``): day-first or month-first is decided per file from
  all its rows (a first field above 12 means day-first, a second above 12 month-first), never from the first
  row. A file whose every date reads both ways takes the ``date_order`` setting; without one it is refused
  with a message naming that setting.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from cnn_pipelines.trading.prices.validation import PriceSchemaError

DATE_ORDERS = ("dayfirst", "monthfirst")
DEFAULT_TZ = "America/New_York"
_YMD = re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?P<rest>.*)$")
_YMD8 = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?P<rest>(?:[ T].*)?)$")
_EPOCH = r"\d{9,19}"
_NUM = re.compile(r"^(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4}|\d{2})(?P<rest>.*)$")
_TIME = re.compile(r"^(?:[ T](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?)?\s*"
                   r"(?P<off>Z|UTC|[+-]\d{2}(?::?\d{2})?)?$")


class AmbiguousDatesError(PriceSchemaError):
    """Every date of a file reads as day-first and as month-first alike, and no ``date_order`` is set."""


def session_dates(values: pd.Series, tz: str | None = None, date_order: str | None = None,
                  source: str = "prices") -> pd.Series:
    """``values`` as naive midnight timestamps of the exchange's local session date (same index).

    ``tz`` is the exchange's time zone (default New York); ``date_order`` ("dayfirst" or "monthfirst")
    decides numeric dates only where the file itself cannot. Raises PriceSchemaError naming ``source`` and
    example values when a date cannot be read."""
    if date_order is not None and date_order not in DATE_ORDERS:
        raise ValueError(f"date_order must be one of {DATE_ORDERS} or unset, got {date_order!r}")
    tz = tz or DEFAULT_TZ
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _aware_to_sessions(values, tz)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.normalize()
    present = values.dropna()
    if len(present) and all(isinstance(v, dt.date) for v in present.head(50)):
        try:
            parsed = pd.Series(pd.to_datetime(values.to_numpy(), utc=False), index=values.index)
        except (TypeError, ValueError):
            parsed = None  # a mix of naive and aware objects: read them as text below
        if parsed is not None and isinstance(parsed.dtype, pd.DatetimeTZDtype):
            return _aware_to_sessions(parsed, tz)
        if parsed is not None and pd.api.types.is_datetime64_any_dtype(parsed.dtype):
            return parsed.dt.normalize()
    if pd.api.types.is_float_dtype(values.dtype) and bool((values.dropna() % 1 == 0).all()):
        values = values.astype("Int64")  # yyyymmdd read as floats because of an empty cell
    if pd.api.types.is_integer_dtype(values.dtype):
        values = values.astype("string")
    plain = _plain_dates(values, date_order)
    if plain is not None:
        return plain
    text = values.astype("string").str.strip()
    if len(text.dropna()) and bool(text.dropna().str.fullmatch(_EPOCH).all()):
        return _epoch_to_sessions(text, tz)
    return _text_to_sessions(text, tz, date_order, source)


_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?P<t>[ T]\d{1,2}:\d{2}(?P<s>:\d{2})?)?$")
_DAY_MONTH = re.compile(r"^\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)\d{4}(?P<t>[ T]\d{1,2}:\d{2}(?P<s>:\d{2})?)?$")


def _plain_dates(values: pd.Series, date_order: str | None) -> pd.Series | None:
    """The layouts most files use, without offsets (``2020-01-02``, ``20200102``, ``01/02/2020 16:00:00``,
    ``02.01.2020``), parsed in C instead of through the regexes of the general path (``benchmarks/ingest.py``).
    Numeric day/month dates follow the same rule: the one order that reads every row, else ``date_order``.
    None when the first value has another layout or any row does not parse: the general path decides (and
    names the rows it cannot read)."""
    present = values.dropna()
    if not len(present):
        return None
    first = str(present.iloc[0]).strip()
    if re.fullmatch(r"\d{8}", first):
        orders = {None: "%Y%m%d"}
    elif m := _ISO.match(first):
        orders = {None: "%Y-%m-%d" + _time_format(m)}
    elif m := _DAY_MONTH.match(first):
        sep, time = m["sep"], _time_format(m)
        orders = {"monthfirst": f"%m{sep}%d{sep}%Y{time}", "dayfirst": f"%d{sep}%m{sep}%Y{time}"}
    else:
        return None
    for order, fmt in orders.items():
        dates = pd.to_datetime(values, format=fmt, errors="coerce")
        if int(dates.notna().sum()) != len(present):
            continue  # some row does not read this way: the other order, or the general path
        if order == "monthfirst" and not bool((dates.dt.day > 12).any()):
            # every row reads day-first too: the setting decides, or the general path refuses naming it
            if date_order is None:
                return None
            if date_order == "dayfirst":
                dates = pd.to_datetime(values, format=orders["dayfirst"])
        return dates.dt.normalize()
    return None


def _time_format(match: re.Match) -> str:
    """The strptime suffix for the time of day a matched date carries (none, hh:mm or hh:mm:ss)."""
    if not match["t"]:
        return ""
    return match["t"][0] + ("%H:%M:%S" if match["s"] else "%H:%M")


def _epoch_to_sessions(text: pd.Series, tz: str) -> pd.Series:
    """Integer epochs in UTC, their unit read from their length (10 digits seconds, 13 ms, 16 us, 19 ns)."""
    digits = text.str.len().fillna(0).astype(int).to_numpy()
    scale = np.select([digits <= 10, digits <= 13, digits <= 16], [10**9, 10**6, 10**3], 1)
    nanos = pd.to_numeric(text).astype("Int64") * pd.Series(scale, index=text.index, dtype="Int64")
    return _aware_to_sessions(pd.to_datetime(nanos, unit="ns", utc=True), tz)


def _aware_to_sessions(values: pd.Series, tz: str) -> pd.Series:
    """Tz-aware timestamps: a stamp at midnight in its own zone labels that date; any other is dated in ``tz``."""
    own = values.dt.tz_localize(None)
    midnight = own == own.dt.normalize()
    return own.dt.normalize().where(midnight, values.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize())


def _examples(text: pd.Series, mask, n: int = 3) -> list[str]:
    return [f"row {i}: {v!r}" for i, v in text[np.asarray(mask)].head(n).items()]


def _numeric_order(a: pd.Series, b: pd.Series, date_order: str | None, text: pd.Series, source: str) -> str:
    """Day-first or month-first for a file's numeric dates, from all its rows."""
    a_day, b_day = bool((a > 12).any()), bool((b > 12).any())
    if a_day and b_day:
        both = text.index.isin(a.index[a > 12]) | text.index.isin(b.index[b > 12])
        raise PriceSchemaError(f"{source}: dates mix day-first and month-first (e.g. "
                               f"{_examples(text, both)}); make the file use one order")
    if a_day:
        return "dayfirst"
    if b_day:
        return "monthfirst"
    if date_order is None:
        raise AmbiguousDatesError(
            f"{source}: every date reads as day-first and as month-first (e.g. {text.dropna().iloc[0]!r}); set "
            f"date_order: dayfirst or monthfirst in cnn_pipelines.yaml (or CNN_DATE_ORDER)")
    return date_order


def _text_to_sessions(text: pd.Series, tz: str, date_order: str | None, source: str) -> pd.Series:
    parts = pd.DataFrame(index=text.index, columns=["y", "m", "d", "rest"], dtype="object")
    for pattern in (_YMD, _YMD8):
        todo = parts["y"].isna() & text.notna()
        found = text[todo].str.extract(pattern)
        parts.loc[found.dropna(subset=["y"]).index, ["y", "m", "d", "rest"]] = found.dropna(subset=["y"])[["y", "m", "d", "rest"]].to_numpy()
    todo = parts["y"].isna() & text.notna()
    num = text[todo].str.extract(_NUM).dropna(subset=["y"])
    if len(num):
        a, b = num["a"].astype(int), num["b"].astype(int)
        order = _numeric_order(a, b, date_order, text, source)
        day, month = (a, b) if order == "dayfirst" else (b, a)
        year = num["y"].astype(int)
        year = year.where(num["y"].str.len() == 4, np.where(year < 70, 2000 + year, 1900 + year))
        parts.loc[num.index, ["y", "m", "d", "rest"]] = np.column_stack(
            [year.astype(str), month.astype(str), day.astype(str), num["rest"]])
    other = parts["y"].isna() & text.notna()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if other.any():
        out[other] = _free_text_to_sessions(text[other], tz, source)
    found = parts.dropna(subset=["y"])
    if len(found):
        times = found["rest"].fillna("").str.extract(_TIME)
        bad_time = times.isna().all(axis=1) & (found["rest"].fillna("").str.strip() != "")
        if bad_time.any():
            raise PriceSchemaError(f"{source}: column 'date' has unreadable times, e.g. "
                                   f"{_examples(text[found.index], bad_time)}")
        wall = pd.to_datetime(pd.DataFrame({
            "year": found["y"].astype(int), "month": found["m"].astype(int), "day": found["d"].astype(int),
            **{unit: pd.to_numeric(times[col]).fillna(0).astype(int)
               for unit, col in (("hour", "h"), ("minute", "mi"), ("second", "s"))}}), errors="coerce")
        if wall.isna().any():
            raise PriceSchemaError(f"{source}: column 'date' has impossible dates, e.g. "
                                   f"{_examples(text[found.index], wall.isna())}")
        offset = times["off"]
        dates = wall.dt.normalize().copy()
        stamped = offset.notna() & (wall != dates)  # a time of day with an offset: date it on the exchange
        if stamped.any():
            minutes = offset[stamped].map(_offset_minutes)
            utc = (wall[stamped] - pd.to_timedelta(minutes, unit="min")).dt.tz_localize("UTC")
            dates.loc[stamped] = utc.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        out[found.index] = dates
    return out


def _offset_minutes(offset: str) -> int:
    if offset in ("Z", "UTC"):
        return 0
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0))


def _free_text_to_sessions(text: pd.Series, tz: str, source: str) -> pd.Series:
    """Dates pandas can read in other layouts ("Jan 2, 2020", "2-Jan-2020"), offsets converted as above."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mixed offsets: pandas warns and returns objects, handled below
            parsed = pd.to_datetime(text, format="mixed")
        if not pd.api.types.is_datetime64_any_dtype(parsed.dtype):  # offsets that differ (DST), or mixed
            parsed = pd.to_datetime(text, format="mixed", utc=True)
    except (ValueError, TypeError) as exc:
        raise PriceSchemaError(f"{source}: column 'date' is not parseable as dates ({exc}); e.g. "
                               f"{_examples(text, text.notna())}") from exc
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return _aware_to_sessions(parsed, tz)
    return parsed.dt.normalize()
