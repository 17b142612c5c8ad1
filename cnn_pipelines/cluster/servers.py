"""Start and stop the servers of a cluster deployment on this machine: PostgreSQL (the instance's database),
Redis (the Celery broker), an S3-API server (moto's, the lake's object storage) and Celery workers (which
execute the runs).

    python -m cnn_pipelines.cluster.servers postgres start DIR [--port 5433]   # prints CNN_POSTGRES_URL
    python -m cnn_pipelines.cluster.servers redis start DIR [--port 6380]      # prints CNN_CELERY_BROKER
    python -m cnn_pipelines.cluster.servers worker start DIR [--name w1]       # DAGSTER_HOME etc. from the env
    python -m cnn_pipelines.cluster.servers {postgres,redis,worker} stop DIR [--name w1]
    python -m cnn_pipelines.cluster.servers cluster start|stop DIR             # make cluster / cluster-stop
    python -m cnn_pipelines.cluster.servers cluster check DIR                  # the env's servers reachable?

PostgreSQL and Redis come from Debian (``apt-get install postgresql redis-server``). ``initdb`` refuses to run
as root, so as root the database cluster is created and run as the ``postgres`` user. Every server listens on
127.0.0.1 unless its own configuration says otherwise.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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


def _pg_owner() -> str | None:
    """The user that runs PostgreSQL here: ``postgres`` when we are root (initdb refuses root), else us."""
    return "postgres" if os.geteuid() == 0 else None


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ServerError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (for a local cluster beside another)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_url(port: int, database: str = DATABASE) -> str:
    """The SQLAlchemy URL of the cluster's database (psycopg2, the driver dagster-postgres installs)."""
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"


def start_postgres(data_dir: Path, port: int = 5433) -> str:
    """Create (once) and start a PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port`` only, with a
    ``dagster`` database; returns its URL. Starting a running cluster is an error that names its log."""
    data_dir = Path(data_dir).resolve()
    bin_dir = postgres_bin()
    owner = _pg_owner()
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
    owner = _pg_owner()
    _run(_as_owner([str(postgres_bin() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], owner),
         "pg_ctl stop")


def redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def start_redis(data_dir: Path, port: int = 6380) -> str:
    """Start redis-server on 127.0.0.1:``port`` in the background (no snapshots: the broker's queue is
    transient; a lost run is requeued by the run monitor); returns the broker URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise ServerError("Redis is not installed: apt-get install redis-server")
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _run([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "",
          "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(data_dir / "redis.pid"),
          "--logfile", str(data_dir / "redis.log")], "redis-server")
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() \
                == "PONG":
            return redis_url(port)
        time.sleep(0.05)
    raise ServerError(f"redis-server did not answer on port {port} (log: {data_dir / 'redis.log'})")


def stop_redis(data_dir: Path) -> None:
    _stop_pidfile(Path(data_dir).resolve() / "redis.pid", "redis-server")


def start_worker(data_dir: Path, name: str = "worker1") -> int:
    """Start a Celery worker of the project's app (``cnn_pipelines.cluster.celery_app``) in the background: one
    run at a time, on the queue the run launcher sends to. It reads DAGSTER_HOME, CNN_CELERY_BROKER,
    CNN_POSTGRES_URL and CNN_LAKE_ROOT from the environment. Returns its pid (also in DIR/NAME.pid)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    for var in ("DAGSTER_HOME", "CNN_CELERY_BROKER"):
        if not os.environ.get(var):
            raise ServerError(f"a worker needs {var} in its environment")
    env = dict(os.environ)
    if not env.get("CNN_LAKE_CACHE"):  # each worker its own disk, as on separate machines: what one trained,
        env["CNN_LAKE_CACHE"] = str(data_dir / f"{name}-lake-cache")  # another downloads from the bucket
    log = open(data_dir / f"{name}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "cnn_pipelines.cluster.celery_app", "worker",
                             "--pool", "solo", "-Q", "dagster", "-n", f"{name}@%h", "--loglevel", "INFO"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (data_dir / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


S3_BUCKET = "cnn-lake"
# A local S3-API server takes any key; these are not secrets and never reach AWS (the endpoint is 127.0.0.1).
S3_LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local-moto", "AWS_SECRET_ACCESS_KEY": "local-moto",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def s3_env(port: int) -> dict[str, str]:
    """The environment that points the lake's S3 client at the local S3-API server on ``port``."""
    return {"CNN_S3_ENDPOINT": f"http://127.0.0.1:{port}", **S3_LOCAL_CREDENTIALS}


def start_s3(data_dir: Path, port: int = 9300, bucket: str = S3_BUCKET) -> str:
    """Start moto's S3-API server on 127.0.0.1:``port`` in the background (state in memory: a lake for tests and
    a local cluster, gone when it stops) and create ``bucket``; returns the lake root ``s3://bucket/lake``."""
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        raise ServerError("moto's S3 server is not installed: pip install -e '.[cluster]' (moto[server])")
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **s3_env(port)}
    log = open(data_dir / "s3.log", "ab")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    (data_dir / "s3.pid").write_text(str(proc.pid))
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="local-moto", aws_secret_access_key="local-moto")
    for _ in range(200):
        try:
            client.create_bucket(Bucket=bucket)
            return f"s3://{bucket}/lake"
        except client.exceptions.BucketAlreadyOwnedByYou:
            return f"s3://{bucket}/lake"
        except Exception:  # noqa: BLE001 - not listening yet
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise ServerError(f"the S3 server did not answer on port {port} (log: {data_dir / 's3.log'})")


def stop_s3(data_dir: Path) -> None:
    _stop_pidfile(Path(data_dir).resolve() / "s3.pid", "S3 server", group=True)


def stop_worker(data_dir: Path, name: str = "worker1") -> None:
    """Warm shutdown: the worker finishes its current run first (SIGTERM), killed after 60 s."""
    _stop_pidfile(Path(data_dir).resolve() / f"{name}.pid", f"worker {name}", grace=60)


def _stop_pidfile(pidfile: Path, what: str, grace: float = 10, group: bool = False) -> None:
    _stop_pidfiles([(pidfile, what, grace, group)])


def _stop_pidfiles(items: list[tuple[Path, str, float, bool]]) -> None:
    """SIGTERM every (pid file, name, grace seconds, whole process group) at once, then wait for each; what
    outlives its grace is killed. Stopping together: two workers' warm shutdowns take 3 s, not 6."""
    waiting = []
    for pidfile, what, grace, group in items:
        if not pidfile.exists():
            raise ServerError(f"{what} is not running here ({pidfile} is missing)")
        pid = int(pidfile.read_text().strip())
        try:
            os.killpg(pid, signal.SIGTERM) if group else os.kill(pid, signal.SIGTERM)
            waiting.append((pid, time.time() + grace, group))
        except ProcessLookupError:
            pass
        pidfile.unlink(missing_ok=True)
    while waiting:
        still = []
        for pid, deadline, group in waiting:
            try:
                os.waitpid(pid, os.WNOHANG)  # our own child: reap it, or kill(pid, 0) would find the zombie
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            if time.time() > deadline:
                os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
            else:
                still.append((pid, deadline, group))
        waiting = still
        if waiting:
            time.sleep(0.05)


def check_cluster_env(env: dict[str, str] | None = None, timeout_s: float = 5.0) -> None:
    """Fail at start, with the setting and the server named, when the cluster's configuration cannot work:
    the instance database (CNN_POSTGRES_URL), the broker (CNN_CELERY_BROKER) and the lake (CNN_LAKE_ROOT).
    Without this a wrong URL surfaces as a traceback deep inside the first run."""
    env = dict(os.environ if env is None else env)
    problems = []
    url = env.get("CNN_POSTGRES_URL", "")
    if not url:
        problems.append("CNN_POSTGRES_URL is not set (the instance database, e.g. postgresql+psycopg2://...)")
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(url, connect_args={"connect_timeout": int(max(1, timeout_s))})
        try:
            with engine.connect() as con:
                con.execute(sa.text("select 1"))
        except Exception as err:  # noqa: BLE001 - any driver error is the same message to the user
            problems.append(f"CNN_POSTGRES_URL: cannot reach the database at {_safe(url)}: "
                            f"{str(err).splitlines()[0]}")
        finally:
            engine.dispose()
    broker = env.get("CNN_CELERY_BROKER", "")
    if not broker:
        problems.append("CNN_CELERY_BROKER is not set (the Redis broker, e.g. redis://127.0.0.1:6380/0)")
    else:
        import redis

        try:
            redis.Redis.from_url(broker, socket_connect_timeout=timeout_s, socket_timeout=timeout_s).ping()
        except Exception as err:  # noqa: BLE001
            problems.append(f"CNN_CELERY_BROKER: cannot reach the broker at {_safe(broker)}: {err}")
    lake = env.get("CNN_LAKE_ROOT", "")
    if not lake:
        problems.append("CNN_LAKE_ROOT is not set (the lake every worker shares)")
    elif lake.startswith("s3://"):
        from cnn_pipelines.storage import objects

        saved = dict(os.environ)
        os.environ.update(env)
        try:
            objects._filesystem.cache_clear()
            why = objects.check_bucket(lake)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            objects._filesystem.cache_clear()
        if why:
            problems.append(f"CNN_LAKE_ROOT: {lake}: {why}")
    else:
        probe = Path(lake)
        while not probe.exists():
            probe = probe.parent   # the lake folder is created on first write: its nearest existing ancestor
        if not probe.is_dir() or not os.access(probe, os.W_OK):
            problems.append(f"CNN_LAKE_ROOT: {lake} is not writable here ({probe} is not a writable folder)")
    if problems:
        raise ServerError("the cluster configuration does not work:\n  " + "\n  ".join(problems))


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


CLUSTER_PORTS = {"postgres": 5433, "redis": 6380, "s3": 9300, "ui": 3000}
WORKERS = ("worker1", "worker2")


def cluster_env(base: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    """The environment of a local cluster in ``base`` (what ``up`` writes to BASE/env)."""
    base, ports = Path(base).resolve(), {**CLUSTER_PORTS, **(ports or {})}
    return {"DAGSTER_HOME": str(base / "home"), "CNN_POSTGRES_URL": postgres_url(ports["postgres"]),
            "CNN_CELERY_BROKER": redis_url(ports["redis"]), **s3_env(ports["s3"]),
            "CNN_LAKE_ROOT": os.environ.get("CNN_LAKE_ROOT") or f"s3://{S3_BUCKET}/lake"}


def up(base: Path, repo: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    """``make cluster``: Postgres, Redis, two workers, the daemon and the web UI on 127.0.0.1, state in ``base``
    (pid files, logs, the instance's dagster.yaml, ``env`` to source). Returns the cluster's environment."""
    base, ports = Path(base).resolve(), {**CLUSTER_PORTS, **(ports or {})}
    base.mkdir(parents=True, exist_ok=True)
    env = cluster_env(base, ports)
    (base / "home").mkdir(exist_ok=True)
    shutil.copy(Path(repo) / "deploy" / "cluster" / "dagster.yaml", base / "home" / "dagster.yaml")
    start_postgres(base / "postgres", ports["postgres"])
    start_redis(base / "redis", ports["redis"])
    start_s3(base / "s3", ports["s3"])
    os.environ.update(env)
    check_cluster_env(env)
    for name in WORKERS:
        start_worker(base / "workers", name)
    bin_dir = Path(sys.executable).parent
    for name, cmd in (("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"]),
                      ("ui", [str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                              "-p", str(ports["ui"])])):
        log = open(base / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, cwd=repo, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        (base / f"{name}.pid").write_text(str(proc.pid))
    (base / "env").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    return env


def down(base: Path) -> list[str]:
    """``make cluster-stop``: stop exactly what ``up`` started in ``base`` (by its pid files): the UI, the daemon
    and the workers together, then the broker and the database."""
    base = Path(base).resolve()
    first = [(base / f"{name}.pid", name, 30.0, True) for name in ("ui", "daemon")]
    first += [(base / "workers" / f"{name}.pid", name, 60.0, False) for name in WORKERS]
    first = [item for item in first if item[0].exists()]
    _stop_pidfiles(first)
    stopped = [what for _, what, _, _ in first]
    if (base / "s3" / "s3.pid").exists():
        stop_s3(base / "s3")
        stopped.append("s3")
    if (base / "redis" / "redis.pid").exists():
        stop_redis(base / "redis")
        stopped.append("redis")
    if (base / "postgres" / "postmaster.pid").exists():
        stop_postgres(base / "postgres")
        stopped.append("postgres")
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_pipelines.cluster.servers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server", choices=["postgres", "redis", "worker", "cluster"])
    parser.add_argument("action", choices=["start", "stop", "check"])
    parser.add_argument("dir", type=Path, help="the server's data folder")
    parser.add_argument("--port", type=int, help="postgres: 5433, redis: 6380")
    parser.add_argument("--name", default="worker1", help="a worker's name")
    args = parser.parse_args(argv)
    try:
        if args.action == "check":
            check_cluster_env()
            print("cluster configuration works: database, broker and lake reachable")
        elif args.server == "cluster" and args.action == "start":
            env = up(args.dir, Path(__file__).resolve().parents[2])
            print(f"cluster up: web UI http://127.0.0.1:{CLUSTER_PORTS['ui']}, workers {', '.join(WORKERS)}; "
                  f"source {Path(args.dir).resolve() / 'env'} to use it ({', '.join(env)})")
        elif args.server == "cluster":
            print("stopped: " + (", ".join(down(args.dir)) or "nothing was running"))
        elif args.server == "postgres":
            print(start_postgres(args.dir, args.port or 5433)) if args.action == "start" else stop_postgres(args.dir)
        elif args.server == "redis":
            print(start_redis(args.dir, args.port or 6380)) if args.action == "start" else stop_redis(args.dir)
        elif args.action == "start":
            print(start_worker(args.dir, args.name))
        else:
            stop_worker(args.dir, args.name)
    except ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
