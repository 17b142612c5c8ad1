"""The Parquet data lake (source of truth) and its DuckDB catalog (query layer).

Layout: date-partitioned tables keep one file per calendar month, ``<root>/<asset>/month=YYYY-MM/data.parquet``,
rows sorted by (date, ticker), with the month's materialized days (holidays included, as empty days) in the
file's own metadata. Writing day partitions rewrites the months they fall in (read, replace those days, write),
under a per-table lock, so re-running a partition is idempotent and concurrent writers of one month never lose
each other's days. Whole-table and date-filtered queries open 12 files a year instead of 260 (DuckDB prunes
row groups by their date statistics). Monthly research tables are ``<root>/<asset>/period=YYYY-MM-DD/data.parquet``
and the rest ``<root>/<asset>/data.parquet``. Every write goes to a hidden temporary file in the target
directory and is renamed into place (atomic on POSIX), so readers and crashes never see half a file.

The root may be ``s3://bucket/prefix`` (``storage/objects.py``): the same layout and the same functions, with
one PUT per file instead of temp-and-rename, conditional writes on the ETag instead of the file lock, and a
commit record for a write that spans months (``_write_months_remote``) instead of renaming them together. The
DuckDB catalog then lives on local disk (views over the bucket; ``catalog_path``).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from cnn_pipelines.storage import objects
from cnn_pipelines.storage.spool import SpooledTable

DATA_FILE = "data.parquet"
CATALOG_FILE = "lake.duckdb"
_TMP_PREFIX = ".tmp-"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MissingPartitionsError(FileNotFoundError):
    """Upstream partitions a step needs have not been materialized."""

    def __init__(self, table: str, missing: Sequence[str]) -> None:
        self.table, self.missing = table, list(missing)
        shown = ", ".join(self.missing[:10]) + (f", ... ({len(self.missing)} in all)" if len(self.missing) > 10 else "")
        super().__init__(f"{table}: {len(self.missing)} upstream partition(s) not materialized: {shown}. "
                         f"Materialize them first (e.g. a backfill of {table} over that range).")


def default_root() -> Path:
    """Lake root: $CNN_LAKE_ROOT (a folder or ``s3://bucket/prefix``), else ./data_lake."""
    from cnn_pipelines.settings_file import project_env

    return as_root(project_env().get("CNN_LAKE_ROOT") or "data_lake")


def as_root(root: str | os.PathLike) -> Path:
    """A root or a path in the lake as a path object (local ``Path``, or the S3 one for ``s3://`` roots)."""
    return objects.lake_path(root)


def table_dir(root: Path, table: str) -> Path:
    if not _IDENT.match(table):
        raise ValueError(f"table name {table!r} is not a plain identifier")
    return as_root(root) / table


def artifact_dir(root: Path, *parts: str) -> Path:
    """A local folder for files that libraries write (checkpoints, reports): ``<root>/<parts>`` for a local lake;
    for a lake on object storage its local mirror, whose files are uploaded when written (``objects.push``)."""
    root = as_root(root)
    path = root.joinpath(*parts)
    return objects.local_mirror(path) if objects.is_remote(path) else path


def stored_artifact(root: Path, stored: str) -> Path:
    """An artifact path that a lake document records (a checkpoint folder, written by whichever machine trained
    it) as a path on this machine: for a lake on object storage, the same object's place in this machine's
    mirror (``objects.pull`` fetches it there), since the writer's mirror may sit elsewhere."""
    root = as_root(root)
    if not objects.is_remote(root):
        return Path(stored)
    marker = f"/{objects.key(root)}/"
    at = str(stored).find(marker)
    return Path(stored) if at < 0 else objects.cache_root() / objects.key(root) / str(stored)[at + len(marker):]


def location(path: Path) -> str:
    """Where a file of the lake is, as a user would look for it (absolute path, or its ``s3://`` URL)."""
    return str(path) if objects.is_remote(path) else str(Path(path).resolve())


def stamp(path: Path) -> object:
    """What changes when the file is rewritten (size and mtime, or the object's ETag); None if absent."""
    if objects.is_remote(path):
        return objects.etag(path)
    with contextlib.suppress(FileNotFoundError):
        st = Path(path).stat()
        return st.st_mtime_ns, st.st_size
    return None


def _read_parquet(path: Path) -> pa.Table:
    return objects.read_parquet(path) if objects.is_remote(path) else pq.read_table(path)


def partition_path(root: Path, table: str, key: str, column: str = "date", name: str = DATA_FILE) -> Path:
    """The file that holds partition ``key``: for a day of a date-partitioned table, its month's file."""
    if column == "date" and name == DATA_FILE:
        return month_path(root, table, key[:7])
    return table_dir(root, table) / f"{column}={key}" / name


DAYS_META = b"cnn_pipelines.days"  # the materialized days of a month file, in its Parquet key-value metadata
# On object storage, which write last set each day of a month file (ids ordered by time): a write that reaches a
# month after a newer write of the same day (a commit finished late by a reader) leaves that day alone.
WRITES_META = b"cnn_pipelines.day_writes"


def month_path(root: Path, table: str, month: str) -> Path:
    return table_dir(root, table) / f"month={month}" / DATA_FILE


def month_days(path: Path) -> set[str]:
    """The days a month file holds (empty ones included); empty set if there is no file."""
    try:
        schema = objects.read_schema(path) if objects.is_remote(path) else pq.read_schema(path)
    except FileNotFoundError:
        return set()
    return set(json.loads((schema.metadata or {}).get(DAYS_META, b"[]")))


@contextlib.contextmanager
def _table_lock(root: Path, table: str):
    """Serialize writers of one table across processes (month files are read, changed and rewritten)."""
    d = table_dir(root, table)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".write.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def unpartitioned_path(root: Path, table: str) -> Path:
    return table_dir(root, table) / DATA_FILE


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow table with lake types: ``date`` as date32, ticker as string, no pandas index."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if "date" in table.column_names:
        idx = table.column_names.index("date")
        col = table.column("date")
        if not pa.types.is_date32(col.type):
            col = pa.array(pd.to_datetime(df["date"]).dt.date, type=pa.date32())
        table = table.set_column(idx, pa.field("date", pa.date32()), col)
    return table


def _tmp_name(target: Path) -> Path:
    return target.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}.parquet"


def write_tables_atomically(items: Iterable[tuple[Path, pa.Table]]) -> list[Path]:
    """Write every table to a temp file first, then rename all into place.

    A failure while writing leaves every existing file untouched (temp files are removed); renames happen
    only once all temp files are complete and fsynced. On object storage every file is serialized first, then
    each is one PUT (an object appears whole or not at all).
    """
    items = iter(items)  # a generator stays lazy: one table in memory at a time (the panel's months)
    first = next(items, None)
    if first is None:
        return []
    items = itertools.chain([first], items)
    if objects.is_remote(first[0]):
        blobs = [(target, objects.parquet_bytes(table)) for target, table in items]
        for target, blob in blobs:
            objects.put(target, blob)
        return [t for t, _ in blobs]
    staged: list[tuple[Path, Path]] = []
    try:
        for target, table in items:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(target)
            staged.append((tmp, target))
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
    return [t for _, t in staged]


def _without_days_meta(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata({k: v for k, v in (table.schema.metadata or {}).items()
                                          if k not in (DAYS_META, WRITES_META, b"pandas")} or None)


def write_partitions(root: Path, table: str, df: pd.DataFrame, keys: Sequence[str]) -> dict[str, int]:
    """Write the day partitions ``keys`` of a date-partitioned table from ``df`` (split by its ``date`` column).

    Each month the keys touch is rewritten with those days replaced and its other days kept; all months are
    staged first and renamed into place together, so a failure leaves every stored file as it was. On object
    storage the months are staged and committed by one record first, then each is one conditional PUT
    (``_write_months_remote``): a failure before the commit leaves every month as it was, one after it is
    finished by the next reader or writer of the table. A key with no rows is recorded as an empty day (a holiday is an empty partition, not a gap). Rows dated outside
    ``keys`` raise, naming the dates. Returns rows written per key.
    """
    if "date" not in df.columns:
        raise ValueError(f"{table}: a date-partitioned table needs a 'date' column; got {list(df.columns)}")
    arrow = _without_days_meta(to_arrow(df))
    date_str = pd.to_datetime(df["date"]).dt.strftime("%Y-%m-%d").to_numpy() if len(df) else np.array([], dtype=object)
    rows = dict(zip(*np.unique(date_str, return_counts=True))) if len(df) else {}

    def new_rows(month: str, days: list[str]) -> pa.Table:
        return arrow.filter(pa.array(np.isin(date_str, days))) if len(df) else arrow

    return _write_months(root, table, keys, rows, new_rows)


def write_spooled(root: Path, table: str, spool: SpooledTable, keys: Sequence[str]) -> dict[str, int]:
    """``write_partitions`` for a table staged in pieces (``SpooledTable``): the same checks, the same atomic
    commit of every month together, with one month's rows in memory at a time."""
    return _write_months(root, table, keys, spool.day_rows, lambda month, days: spool.month(month))


def _write_months(root: Path, table: str, keys: Sequence[str], rows: dict[str, int], new_rows) -> dict[str, int]:
    """Merge the new rows of each month the ``keys`` touch (``new_rows(month, days)``) with the days the month
    file keeps, and commit all months at once; ``rows``: new rows per day, to check and count."""
    stray = sorted(set(map(str, rows)) - set(keys))
    if stray:
        raise ValueError(f"{table}: rows dated {stray[:10]} fall outside the partitions being written ({len(keys)} keys)")
    counts = {k: int(rows.get(k, 0)) for k in keys}
    months: dict[str, list[str]] = {}
    for k in keys:
        months.setdefault(k[:7], []).append(k)
    if objects.is_remote(as_root(root)):
        _write_months_remote(root, table, months, new_rows)
        return counts

    def merged_months():
        for month, new_days in sorted(months.items()):
            path = month_path(root, table, month)
            old = pq.read_table(path) if path.exists() else None
            yield path, _merged_month(old, new_rows(month, new_days), new_days)

    with _table_lock(root, table):
        write_tables_atomically(merged_months())  # staged one month at a time
    cleanup_stale_tmp(table_dir(root, table))
    return counts


def _merged_month(old: pa.Table | None, new: pa.Table, new_days: list[str]) -> pa.Table:
    """A month file's rows with ``new_days`` replaced by ``new`` and its other days kept; the days it holds in
    its metadata."""
    parts, days = [new], set(new_days)
    if old is not None:
        days |= set(json.loads((old.schema.metadata or {}).get(DAYS_META, b"[]")))
        keep = ~np.isin(pa.compute.strftime(old.column("date"), "%Y-%m-%d").to_numpy(zero_copy_only=False),
                        new_days)
        old = _without_days_meta(old.filter(pa.array(keep)))
        if old.num_rows:
            parts.insert(0, old)
    # the new rows' schema wins; kept rows of a file written before a column existed get it as nulls
    merged = _concat(parts[::-1]).select(parts[-1].schema.names) if len(parts) > 1 else parts[0]
    sort = [("date", "ascending")] + ([("ticker", "ascending")] if "ticker" in merged.column_names else [])
    merged = merged.sort_by(sort)
    meta = dict(merged.schema.metadata or {})
    meta[DAYS_META] = json.dumps(sorted(days)).encode()
    return merged.replace_schema_metadata(meta)


def _put_month(path: Path, new: pa.Table, new_days: list[str], write_id: str, attempts: int = 20) -> None:
    """Merge and PUT one month file on object storage, conditional on the ETag that was read (or on there being
    no object): a writer that lost the race to another writer of the month reads it again and re-merges, so
    neither loses the other's days. Days that a newer write (``write_id`` order) already set are left as they
    are, so a write applied late never replaces newer rows."""
    for attempt in range(attempts):
        try:
            data, tag = objects.read_object(path)
            old = pq.read_table(pa.BufferReader(data))
        except FileNotFoundError:
            tag, old = None, None
        writes = json.loads(((old.schema.metadata or {}) if old is not None else {}).get(WRITES_META, b"{}"))
        days = [d for d in new_days if writes.get(d, "") <= write_id]
        if not days:
            return  # every day was written since by a newer write
        rows = new if len(days) == len(new_days) else new.filter(pa.compute.is_in(
            pa.compute.strftime(new.column("date"), "%Y-%m-%d"), value_set=pa.array(days)))
        merged = _merged_month(old, rows, days)
        meta = dict(merged.schema.metadata or {})
        meta[WRITES_META] = json.dumps(writes | dict.fromkeys(days, write_id), sort_keys=True).encode()
        blob = objects.parquet_bytes(merged.replace_schema_metadata(meta))
        try:
            objects.put(path, blob, if_match=tag, if_absent=tag is None)
            return
        except objects.ConflictError:
            time.sleep(0.05 * (attempt + 1))
    raise objects.ConflictError(f"{path}: still contended after {attempts} conditional writes")


def new_write_id() -> str:
    """An id for a write on object storage, ordered by time (the clock's nanoseconds, then a random tail)."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


COMMITS_DIR = "_commits"  # <table>/_commits/<id>.json: multi-month writes on object storage, committed not yet applied


def _write_months_remote(root: Path, table: str, months: dict[str, list[str]], new_rows) -> None:
    """Object storage has no rename of several files at once, so a write that spans months commits first:
    each month's new rows are staged under ``_commits/<id>/``, then one conditional PUT of ``_commits/<id>.json``
    (the commit point) records them, then each month file is merged and PUT (``_put_month``) and the record is
    removed. A writer that dies before the record leaves every month as it was; one that dies after it leaves a
    commit that the next reader or writer of the table finishes (``finish_commits``). A one-month write is a
    single conditional PUT already."""
    finish_commits(root, table)  # an older commit's days land before this write's
    commit = new_write_id()  # ordered by time: older commits finish first, and never over newer days
    if len(months) == 1:
        ((month, days),) = months.items()
        _put_month(month_path(root, table, month), new_rows(month, days), days, commit)
        return
    base = table_dir(root, table) / COMMITS_DIR
    for month, days in sorted(months.items()):
        objects.put(base / commit / f"month={month}.parquet",
                    objects.parquet_bytes(_without_days_meta(new_rows(month, days))))
    record = {"table": table, "months": dict(sorted(months.items()))}
    objects.put(base / f"{commit}.json", json.dumps(record).encode(), if_absent=True)
    _apply_commit(base, commit, root, table, record["months"])


def _apply_commit(base: Path, commit: str, root: Path, table: str, months: dict[str, list[str]]) -> bool:
    """Merge a committed write's staged rows into their month files; idempotent (each month's days are
    replaced by the same rows), so the writer and a reader finishing it at once agree. False when another
    process finished it first (its staged rows are gone)."""
    fs = objects.filesystem()
    for month, days in sorted(months.items()):
        try:
            rows = objects.read_parquet(base / commit / f"month={month}.parquet")
        except FileNotFoundError:
            if objects.etag(base / f"{commit}.json") is None:
                return False  # finished (record, then staged rows removed) by another process
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(objects.key(base / f"{commit}.json"))
            raise RuntimeError(f"{table}: commit {commit} lost its staged rows (its writer took longer than "
                               f"{ABANDONED_S / 3600:.0f} h to commit, and they were removed as abandoned); the "
                               f"record is removed, re-run the write of {sorted(months)}") from None
        _put_month(month_path(root, table, month), rows, days, commit)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(objects.key(base / f"{commit}.json"))  # done: the record goes first, then its staged rows
    with contextlib.suppress(FileNotFoundError):
        fs.rm(objects.key(base / commit), recursive=True)
    return True


ABANDONED_S = 24 * 3600.0  # staged rows without a record this old belong to a writer that died


def finish_commits(root: Path, table: str, abandoned_after_s: float = ABANDONED_S) -> list[str]:
    """Finish the committed multi-month writes of ``table`` on object storage that their writer did not (it died
    after its commit point), oldest first, and remove rows staged by writers that died before theirs (after a
    day, so a live writer's are untouched). Returns the commits finished here. Nothing for a local lake, whose
    months are renamed into place together."""
    root = as_root(root)
    if not objects.is_remote(root):
        return []
    base = table_dir(root, table) / COMMITS_DIR
    fs = objects.filesystem()
    try:
        entries = sorted(fs.ls(objects.key(base), refresh=True))
    except FileNotFoundError:
        return []
    records = {e.rsplit("/", 1)[-1].removesuffix(".json") for e in entries if e.endswith(".json")}
    finished = []
    for commit in sorted(records):
        try:
            record = json.loads(objects.read_object(base / f"{commit}.json")[0])
        except FileNotFoundError:
            continue  # finished by another process meanwhile
        if _apply_commit(base, commit, root, table, record["months"]):
            finished.append(commit)
    now_ns = time.time_ns()
    for entry in entries:
        name = entry.rsplit("/", 1)[-1]
        if name.endswith(".json") or name in records or not name[:20].isdigit():
            continue
        if (now_ns - int(name[:20])) / 1e9 > abandoned_after_s:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(entry, recursive=True)
    return finished


def write_table(root: Path, table: str, df: pd.DataFrame, key: str | None = None, column: str = "period") -> Path:
    """Write one table atomically: unpartitioned, or as the single file of partition ``column=key``."""
    path = unpartitioned_path(root, table) if key is None else partition_path(root, table, key, column)
    return write_tables_atomically([(path, to_arrow(df))])[0]


@contextlib.contextmanager
def _removed_on_error(tmp: Path):
    """A temp file that a failed write leaves behind is deleted at once (the target is untouched)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_json(path: Path, obj: dict) -> Path:
    """Write a JSON document atomically (``write_bytes``)."""
    return write_bytes(path, json.dumps(obj, indent=1, default=str).encode())


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` atomically (temp file, fsync, rename; one PUT on object storage): a fitted model, say. A
    file of a lake on object storage's local mirror (an artifact) is uploaded once in place."""
    path = as_root(path)
    if objects.is_remote(path):
        objects.put(path, data)
        return path
    _replace_local(path, data)
    objects.push(path)
    return path


def _replace_local(path: Path, data: bytes) -> None:
    """Put ``data`` at a local ``path`` atomically: a temp file beside it, fsynced, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}{path.suffix}"
    with _removed_on_error(tmp):
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def update_json(path: Path, change, attempts: int = 20) -> dict:
    """Read-modify-write of a JSON document that several processes or machines add to (``change(doc)`` returns
    the new document; it must merge, since it may be called again on a newer one): under a file lock on a local
    disk; on object storage (a lake path or a mirrored artifact) a conditional PUT on the ETag that was read,
    retried on conflict, so two writers at once never drop each other's entries. Returns what was written."""
    path = as_root(path)
    remote = path if objects.is_remote(path) else objects.remote_of(path)
    if remote is None:
        lock = Path(path).with_name(f".{Path(path).name}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            doc = change(json.loads(path.read_text()) if path.exists() else {})
            write_json(path, doc)
            return doc
    for attempt in range(attempts):
        try:
            data, tag = objects.read_object(remote)
            doc = change(json.loads(data))
        except FileNotFoundError:
            tag, doc = None, change({})
        blob = json.dumps(doc, indent=1, default=str).encode()
        try:
            objects.put(remote, blob, if_match=tag, if_absent=tag is None)
        except objects.ConflictError:
            time.sleep(0.05 * (attempt + 1))
            continue
        if not objects.is_remote(path):  # the local mirror holds what the bucket now holds (not pushed again:
            _replace_local(path, blob)   # an unconditional upload could overwrite a newer document)
            objects.pull(path)
        return doc
    raise objects.ConflictError(f"{remote}: still contended after {attempts} conditional writes")


def write_npy(path: Path, array: np.ndarray) -> Path:
    """Write a NumPy array atomically as ``.npy`` (``write_bytes``; no pickles: object arrays are refused)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return write_bytes(path, buf.getvalue())


def read_json(path: Path) -> dict:
    return json.loads(as_root(path).read_text())


def read_partitions(root: Path, table: str, keys: Sequence[str], column: str = "date",
                    optional_tail: int = 0) -> pd.DataFrame:
    """Concatenate the given partitions in key order; raise MissingPartitionsError naming absent keys.

    The last ``optional_tail`` keys may be absent (a look-ahead window: bars that have not landed yet are
    simply not there, and what depends on them is unrealized)."""
    if column == "date":
        return _read_days(root, table, list(keys), optional_tail)
    paths = [partition_path(root, table, k, column) for k in keys]
    present = [p.exists() for p in paths]
    required = len(keys) - optional_tail
    missing = [k for i, (k, ok) in enumerate(zip(keys, present)) if not ok and i < required]
    if missing:
        raise MissingPartitionsError(table, missing)
    paths = [p for p, ok in zip(paths, present) if ok]
    if not paths:
        raise MissingPartitionsError(table, [])
    tables = [_read_parquet(p) for p in paths]
    return _concat(tables).to_pandas()


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table from month/period files: types unified to the first non-empty file's; files written before a
    column was added (e.g. raw_prices' adjustment) get it as nulls."""
    schema = next((t.schema for t in tables if t.num_rows), tables[0].schema)
    if all(t.schema.names == schema.names for t in tables):
        return pa.concat_tables([t.cast(schema) if t.schema != schema else t for t in tables])
    return pa.concat_tables(tables, promote_options="permissive")


def _read_days(root: Path, table: str, keys: list[str], optional_tail: int) -> pd.DataFrame:
    finish_commits(root, table)  # a write that committed is read whole, even if its writer died applying it
    months = sorted({k[:7] for k in keys})
    held = {m: month_days(month_path(root, table, m)) for m in months}
    required = len(keys) - optional_tail
    missing = [k for i, k in enumerate(keys) if i < required and k not in held[k[:7]]]
    if missing:
        raise MissingPartitionsError(table, missing)
    tables = []
    for m in months:
        want = sorted(k for k in keys if k[:7] == m and k in held[m])
        if not want:
            continue
        t = _read_parquet(month_path(root, table, m))
        if set(want) != held[m]:  # only some days of the month
            days = pa.compute.strftime(t.column("date"), "%Y-%m-%d")
            t = t.filter(pa.compute.is_in(days, value_set=pa.array(want)))
        tables.append(_without_days_meta(t))
    if not tables:
        raise MissingPartitionsError(table, [])
    return _concat(tables).to_pandas()


def read_table(root: Path, table: str) -> pd.DataFrame:
    path = unpartitioned_path(root, table)
    if not path.exists():
        raise MissingPartitionsError(table, ["(unpartitioned)"])
    return _read_parquet(path).to_pandas()


def materialized_keys(root: Path, table: str, column: str = "date") -> list[str]:
    """Partition keys that have a data file, sorted."""
    d = table_dir(root, table)
    if not d.exists():
        return []
    if column == "date":
        finish_commits(root, table)
        return sorted(k for p in d.glob(f"month=*/{DATA_FILE}") for k in month_days(p))
    return sorted(p.parent.name.removeprefix(f"{column}=") for p in d.glob(f"{column}=*/{DATA_FILE}"))


def migrate_day_files(root: Path) -> dict[str, int]:
    """Fold tables written by the one-file-per-day layout (``<table>/date=YYYY-MM-DD/data.parquet``) into month
    files, a month at a time; each day file is removed only after its month file is in place, so an interrupted
    migration resumes where it stopped. Returns the days moved per table."""
    moved: dict[str, int] = {}
    root = as_root(root)
    if objects.is_remote(root) or not root.exists():  # object storage was never written the old way
        return moved
    for d in sorted(p for p in root.iterdir() if p.is_dir() and _IDENT.match(p.name)):
        files = sorted(d.glob(f"date=*/{DATA_FILE}"))
        by_month: dict[str, list[Path]] = {}
        for f in files:
            by_month.setdefault(f.parent.name.removeprefix("date=")[:7], []).append(f)
        for month, paths in sorted(by_month.items()):
            keys = [p.parent.name.removeprefix("date=") for p in paths]
            tables = [pq.read_table(p) for p in paths]
            schema = next((t.schema for t in tables if t.num_rows), tables[0].schema)
            frame = pa.concat_tables([t.cast(schema) if t.schema != schema else t for t in tables]).to_pandas()
            write_partitions(root, d.name, frame, keys)
            for p in paths:
                p.unlink()
                with contextlib.suppress(OSError):
                    p.parent.rmdir()  # kept when it still holds a JSON document
            moved[d.name] = moved.get(d.name, 0) + len(keys)
    if moved:
        rebuild_catalog(root)
    return moved


def held_keys(root: Path, table: str, keys: Sequence[str]) -> list[str]:
    """The day partitions among ``keys`` that are materialized (reads only their months' footers)."""
    finish_commits(root, table)
    held = {m: month_days(month_path(root, table, m)) for m in {k[:7] for k in keys}}
    return [k for k in keys if k in held[k[:7]]]


def cleanup_stale_tmp(directory: Path, older_than_s: float = 3600.0) -> int:
    """Remove temp files left by crashed writers (older than an hour, so live writers are untouched)."""
    now, removed = time.time(), 0
    if objects.is_remote(directory):  # no temp objects there: each file is one PUT
        return 0
    for tmp in Path(directory).rglob(f"{_TMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
    return removed


# ------------------------------------------------------------------------------------------ DuckDB catalog


def catalog_path(root: Path) -> Path:
    """The DuckDB catalog: ``<root>/lake.duckdb`` for a local lake; for a lake on object storage a local file
    (``$CNN_LAKE_CATALOG_DIR``, else ``$DAGSTER_HOME/.lake-catalogs``) named after the bucket and prefix, since
    DuckDB writes its database on local disk. It holds only views, so each machine may keep its own."""
    root = as_root(root)
    if not objects.is_remote(root):
        return root / CATALOG_FILE
    base = os.environ.get("CNN_LAKE_CATALOG_DIR") or os.path.join(os.environ.get("DAGSTER_HOME") or ".", ".lake-catalogs")
    return Path(base) / (re.sub(r"[^A-Za-z0-9_.-]", "_", objects.key(root)) + ".duckdb")


@contextlib.contextmanager
def connect(root: Path, read_only: bool = True):
    """A DuckDB connection to the lake's catalog; for a lake on object storage with the bucket's filesystem
    registered, so its views read the objects."""
    root = as_root(root)
    with duckdb.connect(str(catalog_path(root)), read_only=read_only) as con:
        if objects.is_remote(root):
            con.register_filesystem(objects.filesystem())
        yield con


def _view_sql(root: Path, table: str) -> str:
    d = table_dir(root, table)
    d = d if objects.is_remote(d) else d.resolve()
    parts = sorted({p.parent.name.split("=")[0] for p in d.glob(f"*=*/{DATA_FILE}")})
    if parts == ["month"]:  # the rows hold their date; no month column in the view (row groups prune by date)
        pattern = str(d / "month=*" / DATA_FILE).replace("'", "''")
        return (f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = false, "
                f"union_by_name = true)")
    if parts:
        pattern = str(d / f"{parts[0]}=*" / DATA_FILE).replace("'", "''")
        return (f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
                f"hive_partitioning = true, union_by_name = true)")
    pattern = str(d / DATA_FILE).replace("'", "''")
    return f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}')"


@contextlib.contextmanager
def _catalog_lock(root: Path):
    catalog = catalog_path(root)
    lock_path = catalog.parent / f".{catalog.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_lock_conflict(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def _retrying(call, when, attempts: int, exhausted: str | None = None):
    """``call()``, again after a growing pause (0.1 s, 0.2 s, ...) while it fails with a DuckDB error that
    ``when`` accepts, at most ``attempts`` times in all; then that error, or TimeoutError(``exhausted``)."""
    for attempt in range(attempts):
        try:
            return call()
        except duckdb.Error as exc:
            if not when(exc):
                raise
            if attempt == attempts - 1:
                if exhausted is None:
                    raise
                raise TimeoutError(exhausted) from exc
            time.sleep(0.1 * (attempt + 1))


def retry_replaced(read, attempts: int = 5):
    """``read()``, again (up to ``attempts`` times) while it fails because a lake object on object storage was
    replaced by another writer as DuckDB read it: each write is one whole object, so the next read is consistent."""
    return _retrying(read, _is_replaced_while_read, attempts)


def _is_replaced_while_read(exc: Exception) -> bool:
    """DuckDB read a lake object on object storage while another writer replaced it (fsspec's ``FileExpired``:
    the ETag changed between opening and reading). Reading again sees the new object whole."""
    return "FileExpired" in str(exc) or "no longer exists" in str(exc)


def catalog_views(root: Path) -> set[str] | None:
    """Names of the views in the catalog; empty if it does not exist, None if it cannot be read
    (written by an incompatible DuckDB version, or damaged) and must be rebuilt."""
    path = catalog_path(root)
    if not path.exists():
        return set()

    def read() -> set[str]:
        with connect(root, read_only=True) as con:
            return {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}

    try:
        return _retrying(read, _is_lock_conflict, 50, f"catalog {path} stayed locked by another process")
    except duckdb.Error:
        return None


def rebuild_catalog(root: Path) -> list[str]:
    """Recreate the catalog from scratch: it holds only views (of the tables, and the derived views recorded in
    the lake), so the Parquet files lose nothing."""
    root = as_root(root)
    catalog = catalog_path(root)
    with _catalog_lock(root):
        for suffix in ("", ".wal"):
            with contextlib.suppress(FileNotFoundError):
                catalog.with_name(catalog.name + suffix).unlink()
    return refresh_catalog(root)


def lake_tables(root: Path, skip: Iterable[str] = ()) -> list[str]:
    """The tables the lake holds (folders with at least one data file), less ``skip`` (those already known).
    On object storage: one listing of the top level, then one per folder not skipped."""
    root, skip = as_root(root), set(skip)
    if objects.is_remote(root):
        fs, prefix = objects.filesystem(), objects.key(root).rstrip("/")
        try:
            names = {k.rsplit("/", 1)[-1] for k in fs.ls(prefix, detail=False, refresh=True)}
        except FileNotFoundError:
            return []
        names = {n for n in names if _IDENT.match(n) and n not in skip}
        return sorted(n for n in names if fs.exists(f"{prefix}/{n}/{DATA_FILE}")
                      or fs.glob(f"{prefix}/{n}/*=*/{DATA_FILE}"))
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and _IDENT.match(p.name) and p.name not in skip and any(p.rglob(DATA_FILE)))


def refresh_catalog(root: Path, tables: Iterable[str] | None = None) -> list[str]:
    """Create/replace the catalog's view for each table (all tables in the lake, and the recorded derived views,
    by default).

    Views read the Parquet files by glob, so new partitions appear without a refresh; a refresh is needed
    only when a table first appears. Writers serialize on a file lock and hold the database only for the DDL,
    so readers are blocked for milliseconds at most.
    """
    root = as_root(root)
    if tables is None:
        return _define_lake(root, skip=set())
    tables = [t for t in tables if any(table_dir(root, t).rglob(DATA_FILE))]
    if tables:
        _execute_ddl(root, [_view_sql(root, t) for t in tables])
    return tables


def _define_lake(root: Path, skip: set[str]) -> list[str]:
    """Define a view for every table and recorded derived view of the lake not in ``skip``; returns them."""
    tables = lake_tables(root, skip=skip)
    if tables:
        _execute_ddl(root, [_view_sql(root, t) for t in tables])
    return tables + _define_recorded(root, recorded_views(root, skip=skip))


VIEWS_DIR = "_views"  # <root>/_views/<name>.sql: the derived views, so every machine's catalog can define them


def recorded_views(root: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """The derived views recorded in the lake (``define_view``): name -> SELECT; those in ``skip`` not read."""
    d, skip = as_root(root) / VIEWS_DIR, set(skip)
    if objects.is_remote(d):
        try:
            keys = objects.filesystem().ls(objects.key(d), detail=False, refresh=True)
        except FileNotFoundError:
            return {}
        files = [d / k.rsplit("/", 1)[-1] for k in keys if k.endswith(".sql")]
    else:
        files = sorted(d.glob("*.sql")) if d.exists() else []
    return {Path(str(f)).stem: f.read_text() for f in sorted(files, key=str) if Path(str(f)).stem not in skip}


def _define_recorded(root: Path, views: dict[str, str]) -> list[str]:
    """Create recorded derived views; one that no longer binds (its tables gone or changed) is left out (its
    owning asset defines it again when it next runs), so it never stops the catalog's upkeep."""
    done = []
    for name, select_sql in sorted(views.items()):
        try:
            _execute_ddl(root, [f"CREATE OR REPLACE VIEW {name} AS {select_sql}"])
            done.append(name)
        except duckdb.Error as exc:
            if _is_lock_conflict(exc):
                raise
    return done


def sync_catalog(root: Path) -> list[str]:
    """Give this machine's catalog a view for every table and recorded derived view of the lake that it lacks:
    with the lake on object storage each machine keeps its own catalog, and assets run on other machines add
    tables. Returns the views created."""
    root = as_root(root)
    existing = catalog_views(root)
    return rebuild_catalog(root) if existing is None else _define_lake(root, skip=existing)


def _execute_ddl(root: Path, statements: list[str]) -> None:
    """Run view DDL on the catalog under the writers' file lock, retrying while a reader holds the file, and,
    on object storage, when a file the view binds to was replaced by another writer while DuckDB read its
    schema (two workers writing the same month: measured on the cluster test, a run failed on it)."""
    catalog_path(root).parent.mkdir(parents=True, exist_ok=True)

    def run() -> None:
        with connect(root, read_only=False) as con:
            for sql in statements:
                con.execute(sql)

    with _catalog_lock(root):  # a reader in another process may hold the file: retried briefly
        _retrying(run, lambda exc: _is_lock_conflict(exc) or _is_replaced_while_read(exc), 50,
                  f"could not open {catalog_path(root)} for writing, or its views' files kept changing")


def define_view(root: Path, name: str, select_sql: str) -> None:
    """Create or replace a derived view (e.g. a union of tables) in the catalog, and record it in the lake
    (``_views/<name>.sql``) so a rebuilt catalog, or another machine's, defines it too. Only views: the data
    stays in Parquet."""
    if not _IDENT.match(name):
        raise ValueError(f"view name {name!r} is not a plain identifier")
    root = as_root(root)
    _execute_ddl(root, [f"CREATE OR REPLACE VIEW {name} AS {select_sql}"])
    write_bytes(root / VIEWS_DIR / f"{name}.sql", select_sql.encode())


def ensure_views(root: Path, tables: Iterable[str]) -> list[str]:
    """Refresh only tables that have no view yet (the cheap path used after every materialization)."""
    if objects.is_remote(as_root(root)):  # other machines add tables and views to a shared bucket
        return sync_catalog(root)
    existing = catalog_views(root)
    if existing is None:
        return rebuild_catalog(root)
    todo = [t for t in tables if t not in existing]
    return refresh_catalog(root, todo) if todo else []
