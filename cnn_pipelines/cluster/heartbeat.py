"""Worker heartbeats in the broker's Redis, so that a run whose worker died is noticed.

Celery keeps a task ``STARTED`` in its result backend forever when the worker executing it is killed (nothing
is left to report the end), so Dagster's run monitoring, which asks the run launcher about the run's worker,
would wait on the run for good. Each worker therefore has a small beating process (``start``) that refreshes
``cnn:alive:<host>:<pid>`` every ``TTL_S / 6`` seconds (expiring after ``TTL_S``, ``CNN_HEARTBEAT_TTL_S``,
default 120) for as long as the worker process exists, and the worker records which worker took each task
(``cnn:task:<task id>``). A run whose task is started but whose worker's key expired lost its worker.

The beats come from a separate process, not a thread of the worker: a thread needs the worker's GIL, and a run
holding it in one C call for longer than the TTL (a large NumPy reduction, an import) would look like a dead
worker, and the monitor would fail a live run and start a second copy of it. So a beat says the worker
process is alive, not that it makes progress.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

TTL_S = int(os.environ.get("CNN_HEARTBEAT_TTL_S", "120"))
BEAT_S = max(1.0, TTL_S / 6)
TASK_TTL_S = 14 * 24 * 3600
BROKER_ENV = "CNN_HEARTBEAT_BROKER"  # how the beating process gets the broker's URL (not argv: ps shows argv)


def worker_id(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def _client(broker_url: str):
    import redis

    return redis.Redis.from_url(broker_url, socket_connect_timeout=5, socket_timeout=5)


def start(broker_url: str, every_s: float = BEAT_S) -> subprocess.Popen:
    """Beat for this process until it exits: one beat now, then a child process that goes on beating and stops
    within a second of its parent's end (a few seconds when the broker does not answer; an outage only skips
    beats). The child has its own session and ignores SIGINT/SIGTERM/SIGHUP: a Ctrl-C or a service manager's
    stop reaches the whole process group, and the worker's warm shutdown finishes its run, beating all along."""
    _beat(_client(broker_url), worker_id(), TTL_S)
    return subprocess.Popen(
        [sys.executable, "-m", "cnn_pipelines.cluster.heartbeat", str(os.getpid()), str(every_s), str(TTL_S)],
        env={**os.environ, BROKER_ENV: broker_url}, stdin=subprocess.DEVNULL, close_fds=True,
        start_new_session=True)


def _beat(client, me: str, ttl_s: int) -> None:
    try:
        client.set(f"cnn:alive:{me}", "1", ex=ttl_s)
    except Exception:  # noqa: BLE001 - the broker is down: the next beat tries again
        pass


def beat_while_alive(parent: int, broker_url: str, every_s: float, ttl_s: int) -> None:
    """The beating process's loop: refresh the parent's key every ``every_s`` while the parent lives."""
    client, me, next_beat = _client(broker_url), worker_id(parent), 0.0
    while os.getppid() == parent:  # re-parented: the worker is gone
        if time.monotonic() >= next_beat:
            _beat(client, me, ttl_s)
            next_beat = time.monotonic() + every_s
        time.sleep(min(0.5, every_s))


def took(broker_url: str, task_id: str) -> None:
    """Record that this worker took ``task_id``."""
    _client(broker_url).set(f"cnn:task:{task_id}", worker_id(), ex=TASK_TTL_S)


def task_worker(broker_url: str, task_id: str) -> tuple[str | None, bool]:
    """(the worker that took ``task_id``, whether it still beats); (None, False) when no worker recorded it."""
    client = _client(broker_url)
    who = client.get(f"cnn:task:{task_id}")
    if who is None:
        return None, False
    who = who.decode()
    return who, bool(client.exists(f"cnn:alive:{who}"))


if __name__ == "__main__":
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # stopped by its worker's end only
    beat_while_alive(int(sys.argv[1]), os.environ[BROKER_ENV], float(sys.argv[2]), int(sys.argv[3]))
