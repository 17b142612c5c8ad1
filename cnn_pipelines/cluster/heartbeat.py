"""Worker heartbeats in the broker's Redis, so that a run whose worker died is noticed.

Celery keeps a task ``STARTED`` in its result backend forever when the worker executing it is killed (nothing
is left to report the end), so Dagster's run monitoring, which asks the run launcher about the run's worker,
would wait on the run for good. Each worker therefore refreshes ``cnn:alive:<host>:<pid>`` every ``TTL_S / 6``
seconds (expiring after ``TTL_S``, ``CNN_HEARTBEAT_TTL_S``, default 120) from a background thread, and records
which worker took each task (``cnn:task:<task id>``). A run whose task is started but whose worker's key expired
lost its worker. The TTL is generous: the beat thread needs the GIL, so a long stretch of Python-held work (or a
broker hiccup) must not look like a dead worker, which would start a second copy of a live run.
"""

from __future__ import annotations

import os
import socket
import threading

TTL_S = int(os.environ.get("CNN_HEARTBEAT_TTL_S", "120"))
BEAT_S = max(1.0, TTL_S / 6)
TASK_TTL_S = 14 * 24 * 3600


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _client(broker_url: str):
    import redis

    return redis.Redis.from_url(broker_url, socket_connect_timeout=5, socket_timeout=5)


def start(broker_url: str, every_s: float = BEAT_S) -> threading.Thread:
    """Beat for this worker process until it exits (a daemon thread; a broker outage only skips beats)."""
    client, me = _client(broker_url), worker_id()

    def beat() -> None:
        while True:
            try:
                client.set(f"cnn:alive:{me}", "1", ex=TTL_S)
            except Exception:  # noqa: BLE001 - the broker is down: the next beat tries again
                pass
            stop.wait(every_s)

    stop = threading.Event()
    thread = threading.Thread(target=beat, name="cnn-heartbeat", daemon=True)
    thread.start()
    return thread


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
