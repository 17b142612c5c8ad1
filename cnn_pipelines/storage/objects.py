"""The lake on object storage: ``s3://bucket/prefix`` roots, reached through fsspec's S3 filesystem (s3fs).

s3fs rather than ``pyarrow.fs.S3FileSystem``: one client serves listing, reads, conditional writes
(``If-Match`` / ``If-None-Match``, which ``pyarrow.fs`` cannot send) and DuckDB (``register_filesystem``
takes an fsspec filesystem, so the catalog queries the bucket without the ``httpfs`` extension, which cannot
be downloaded offline). Arrow reads go through the same client (``pyarrow.fs.FSSpecHandler``).

Where the server is: ``CNN_S3_ENDPOINT`` (e.g. ``http://127.0.0.1:9000`` for a local S3-API server; unset:
AWS). Credentials come from the usual AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, or
``AWS_SHARED_CREDENTIALS_FILE``), never from a committed file.

Atomicity without rename: every object is written by one PUT (readers see the old object or the new one,
never half), and read-modify-write of a month file is a conditional PUT on the ETag that was read, retried
on conflict, instead of a file lock.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEME = "s3://"
ENDPOINT_ENV = "CNN_S3_ENDPOINT"


SINGLE_PUT_MAX = 5 * 2**30  # S3's limit for one PUT


class ConflictError(RuntimeError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


def is_remote(path: Any) -> bool:
    """True for a path on object storage (an ``s3://`` string or a path object made by ``lake_path``)."""
    return str(path).startswith(SCHEME) or getattr(path, "protocol", "") == "s3"


@functools.lru_cache(maxsize=4)
def _filesystem(endpoint: str | None):
    import s3fs

    return s3fs.S3FileSystem(**_options(endpoint), config_kwargs={"retries": {"max_attempts": 3}})


def _options(endpoint: str | None) -> dict[str, Any]:
    """s3fs options: no listings cache, since other processes and machines write the bucket (a cached listing
    would hide their new files from a long-lived worker)."""
    return {"use_listings_cache": False, **({"endpoint_url": endpoint} if endpoint else {})}


def filesystem():
    """The S3 filesystem for this process's settings (one client per endpoint)."""
    return _filesystem(os.environ.get(ENDPOINT_ENV) or None)


def lake_path(root: str | os.PathLike) -> Path:
    """A lake root as a path object: a local ``Path``, or for ``s3://bucket/prefix`` a universal path with the
    same operations (``/``, ``exists``, ``glob``, ``read_bytes``...) over ``filesystem()``."""
    if isinstance(root, PurePath) or (not isinstance(root, str) and is_remote(root)):
        return root  # type: ignore[return-value]
    text = os.fspath(root) if not isinstance(root, str) else root
    if not text.startswith(SCHEME):
        return Path(text)
    from upath import UPath

    bucket = text[len(SCHEME):].split("/", 1)[0]
    if not bucket:
        raise ValueError(f"lake root {text!r}: an S3 root is s3://bucket/prefix")
    return UPath(text.rstrip("/"), **_options(os.environ.get(ENDPOINT_ENV) or None))


def key(path) -> str:
    """``bucket/key`` of a remote path (what s3fs calls take)."""
    return str(path)[len(SCHEME):] if str(path).startswith(SCHEME) else path.path


def etag(path) -> str | None:
    """The object's ETag, or None when there is no object."""
    fs = filesystem()
    try:
        return fs.info(key(path), refresh=True)["ETag"]
    except FileNotFoundError:
        return None


def put(path, data: bytes, *, if_match: str | None = None, if_absent: bool = False) -> None:
    """One PUT of ``data``; with ``if_match`` (an ETag) or ``if_absent`` it is conditional and a lost race raises
    ConflictError instead of overwriting what another writer committed."""
    fs = filesystem()
    cond: dict[str, Any] = {"IfMatch": if_match} if if_match else {}
    one_put = {"chunksize": SINGLE_PUT_MAX}  # s3fs would go multipart above 50 MiB, where If-Match is refused
    try:
        if if_absent:
            fs.pipe_file(key(path), data, mode="create", **one_put)
        else:
            fs.pipe_file(key(path), data, **cond, **one_put)
    except FileExistsError as exc:
        raise ConflictError(f"{path} appeared while it was being written") from exc
    except OSError as exc:
        text = f"{exc} {getattr(exc.__cause__, 'response', '')}".lower()
        # 412 PreconditionFailed: changed since read; 409 ConditionalRequestConflict: a concurrent conditional PUT
        if any(w in text for w in ("pre-condition", "precondition", "conditionalrequestconflict", "409")):
            raise ConflictError(f"{path} changed while it was being rewritten") from exc
        raise
    fs.invalidate_cache(key(path))


def parquet_bytes(table: pa.Table) -> bytes:
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue().to_pybytes()


def _pinned(path, read, attempts: int = 5):
    """``read(file)`` on the object opened at one version: every ranged GET carries ``If-Match`` on the ETag seen
    at open, so an object replaced mid-read is read again rather than spliced from two versions."""
    from s3fs.utils import FileExpired

    fs = filesystem()
    for attempt in range(attempts):
        try:
            with fs.open(key(path), "rb", cache_type="none") as fh:
                return read(fh)
        except FileExpired:
            fs.invalidate_cache(key(path))
            time.sleep(0.02 * (attempt + 1))
    raise ConflictError(f"{path} kept changing while it was read ({attempts} tries)")


def read_object(path) -> tuple[bytes, str]:
    """The whole object and its ETag, from one version."""
    return _pinned(path, lambda fh: (fh.read(), fh.details["ETag"]))


def read_parquet(path) -> pa.Table:
    return pq.read_table(pa.BufferReader(read_object(path)[0]))


def read_schema(path) -> pa.Schema:
    """The Parquet schema from the object's footer (ranged reads of one version, not the whole file)."""
    return _pinned(path, pq.read_schema)


def check_bucket(root: str) -> str | None:
    """Why the lake root ``s3://bucket/prefix`` cannot be used (server unreachable, bucket missing, no write
    permission), or None when a test object can be written and removed."""
    fs = filesystem()
    endpoint = os.environ.get(ENDPOINT_ENV) or "AWS"
    bucket = root[len(SCHEME):].split("/", 1)[0]
    probe = f"{root[len(SCHEME):].rstrip('/')}/.cnn-write-probe"
    try:
        fs.call_s3("head_bucket", Bucket=bucket)  # the server's own answer, not exists()'s False for any failure
    except FileNotFoundError:
        return f"bucket {bucket!r} does not exist at {endpoint} ({ENDPOINT_ENV})"
    except PermissionError as exc:
        return f"access to bucket {bucket!r} at {endpoint} denied (AWS credentials?): {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure here is the reason to report
        return f"cannot reach the S3 server at {endpoint} ({ENDPOINT_ENV}): {type(exc).__name__}: {exc}"
    try:
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except Exception as exc:  # noqa: BLE001
        return f"cannot write to {root} at {endpoint} ({ENDPOINT_ENV}): {type(exc).__name__}: {exc}"
    return None


# ------------------------------------------------------------------------------ artifacts: local, then uploaded
# Keras checkpoints, reports and fitted models are written by libraries that want a local file. For a lake on
# object storage they live in a local mirror of the bucket (``cache_root()/bucket/prefix/...``): written there,
# then uploaded (``push``); a machine that did not write them downloads what it lacks first (``pull``).


def cache_root() -> Path:
    """The local mirror of lake artifacts: $CNN_LAKE_CACHE, else $DAGSTER_HOME/.lake-cache."""
    return Path(os.environ.get("CNN_LAKE_CACHE")
                or os.path.join(os.environ.get("DAGSTER_HOME") or ".", ".lake-cache")).absolute()


def local_mirror(path) -> Path:
    """Where the artifact at the remote ``path`` is kept on this machine."""
    return cache_root() / key(path)


def remote_of(local: os.PathLike) -> str | None:
    """The object a local mirror file or folder stands for; None for a file of a local lake."""
    try:
        rel = Path(local).absolute().relative_to(cache_root())
    except ValueError:
        return None
    return SCHEME + rel.as_posix()


def _sidecar(local: Path) -> Path:
    """Where the ETag of the object a mirrored file was last synced with is kept (hidden, beside it)."""
    return local.with_name(f".{local.name}.etag")


def push(local: os.PathLike) -> None:
    """Upload a mirrored file (one PUT) and remember the object's ETag; nothing for a file of a local lake."""
    remote = remote_of(local)
    if remote is not None:
        put(remote, Path(local).read_bytes())
        _sidecar(Path(local)).write_text(etag(remote) or "")


def pull(local: os.PathLike, name: str | None = None, exact: bool = False) -> None:
    """Bring the mirror up to date with what the bucket holds under ``local`` (a file, or a folder's files, only
    those called ``name`` if given): every object this machine lacks or last synced at another ETag (a refitted
    model of the same size included) is downloaded. ``exact``: local files the bucket no longer has are deleted
    too (the bucket is the authority, e.g. for a checkpoint folder). Nothing for a local lake."""
    remote = remote_of(local)
    if remote is None:
        return
    fs = filesystem()
    try:
        found = fs.find(key(remote), detail=True)
    except FileNotFoundError:
        found = {}
    for obj_key, info in found.items():
        if name is not None and obj_key.rsplit("/", 1)[-1] != name:
            continue
        if _transient(obj_key[len(key(remote)):].lstrip("/")):
            continue
        target = cache_root() / obj_key
        side = _sidecar(target)
        if target.exists() and side.exists() and side.read_text() == info.get("ETag"):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        data, tag = read_object(SCHEME + obj_key)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")  # several processes may pull at once
        tmp.write_bytes(data)
        os.replace(tmp, target)
        side.write_text(tag)
    root = Path(local)
    if exact and root.is_dir():
        held = {cache_root() / k for k in found}
        for path in root.rglob("*"):
            if path.is_file() and not path.name.startswith(".") and path not in held:
                path.unlink()
                _sidecar(path).unlink(missing_ok=True)


def _transient(rel: str) -> bool:
    return any(part.startswith(".") or part == "downloads" or "incomplete" in part or ".tmp" in part
               for part in rel.split("/"))


def push_tree(local: os.PathLike) -> list[Path]:
    """Upload every file under a mirrored folder written here since it was last synced (no ETag sidecar, or one
    older than the file): what a library wrote in place (a tfds dataset, NumPy arrays). Work in progress stays
    local (hidden files, ``downloads/``, tfds's ``incomplete`` folders, temp names), and JSON files go last, so a
    dataset's description never reaches the bucket before its shards. Returns the files uploaded; nothing for a
    local lake."""
    root = Path(local)
    if remote_of(root) is None or not root.exists():
        return []
    todo = []
    for path in root.rglob("*"):
        if not path.is_file() or _transient(path.relative_to(root).as_posix()):
            continue
        side = _sidecar(path)
        if side.exists() and side.stat().st_mtime_ns >= path.stat().st_mtime_ns:
            continue
        todo.append(path)
    todo.sort(key=lambda p: (p.suffix == ".json", str(p)))
    for path in todo:
        push(path)
    return todo


def remove(local: os.PathLike) -> None:
    """Delete the bucket's objects under a mirrored folder (stale checkpoints); nothing for a local lake."""
    remote = remote_of(local)
    if remote is not None:
        fs = filesystem()
        keys = list(fs.find(key(remote), refresh=True))
        if keys:
            fs.rm(keys)
        fs.invalidate_cache(key(remote))
