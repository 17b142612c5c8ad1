"""Start and stop the servers of a cluster deployment on this machine: PostgreSQL (the instance's database).

    python -m cnn_pipelines.cluster.servers postgres start DIR [--port 5433]   # prints the instance's URL
    python -m cnn_pipelines.cluster.servers postgres stop DIR

PostgreSQL comes from Debian (``apt-get install postgresql``; binaries under /usr/lib/postgresql/*/bin).
``initdb`` refuses to run as root, so as root the cluster is created and run as the ``postgres`` user.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

DATABASE = "dagster"


class ServerError(RuntimeError):
    """A server could not be found, started or stopped; the message says what to install or where to look."""


def postgres_bin() -> Path:
    """The newest PostgreSQL server binaries on this machine."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))  # /usr/lib/postgresql/<major>
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServerError("PostgreSQL is not installed: apt-get install postgresql (initdb and pg_ctl are needed)")


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ServerError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def postgres_url(port: int, database: str = DATABASE) -> str:
    """The SQLAlchemy URL of the cluster's database (psycopg2, the driver dagster-postgres installs)."""
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"


def start_postgres(data_dir: Path, port: int = 5433) -> str:
    """Create (once) and start a PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port`` only, with a
    ``dagster`` database; returns its URL. Starting a running cluster is an error that names its log."""
    data_dir = Path(data_dir).resolve()
    bin_dir = postgres_bin()
    owner = "postgres" if os.geteuid() == 0 else None
    data_dir.mkdir(parents=True, exist_ok=True)
    if owner:
        shutil.chown(data_dir, owner, owner)
        os.chmod(data_dir, 0o700)
        if subprocess.run(_as_owner(["test", "-w", str(data_dir)], owner)).returncode != 0:
            raise ServerError(f"the {owner} user cannot reach {data_dir}: choose a folder whose parents it may "
                              "enter (e.g. under /tmp or /srv)")
    if not (data_dir / "PG_VERSION").exists():
        _run(_as_owner([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-instructions"], owner), "initdb")
    log = data_dir / "server.log"
    options = f"-h 127.0.0.1 -p {port} -k {data_dir}"
    _run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(log), "-w", "start"],
                   owner), f"pg_ctl start (log: {log})")
    psql = _as_owner([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tAc"], owner)
    exists = _run([*psql, f"select 1 from pg_database where datname = '{DATABASE}'"], "psql").strip()
    if exists != "1":
        _run([*psql, f"create database {DATABASE}"], "create database")
    return postgres_url(port)


def stop_postgres(data_dir: Path) -> None:
    """Stop the cluster in ``data_dir`` (fast shutdown: open connections are closed)."""
    data_dir = Path(data_dir).resolve()
    owner = "postgres" if os.geteuid() == 0 else None
    _run(_as_owner([str(postgres_bin() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], owner),
         "pg_ctl stop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_pipelines.cluster.servers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server", choices=["postgres"])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", type=Path, help="the server's data folder")
    parser.add_argument("--port", type=int, default=5433)
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            print(start_postgres(args.dir, args.port))
        else:
            stop_postgres(args.dir)
    except ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
