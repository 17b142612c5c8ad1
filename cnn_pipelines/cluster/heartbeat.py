"""Worker heartbeats in the broker's Redis, so that a run whose worker died is noticed.

Celery keeps a task ``STARTED`` in its result backend forever when the worker executing it is killed (nothing
is left to report the end), so Dagster's run monitoring, which asks the run launcher about the run's worker,
would wait on the run for good. Each worker therefore refreshes ``cnn:alive:<host>:<pid>`` every
``BEAT_S`` seconds (expiring after ``TTL_S``) from a background thread, and records which worker took each
task (``cnn:task:<task id>``). A run whose task is started but whose worker's key expired lost its worker.
"""

from __future__ import annotations

import os
import socket
import threading

BEAT_S = 5
TTL_S = 20
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


def lost_worker(broker_url: str, task_id: str) -> str | None:
    """The worker that took ``task_id`` if it stopped beating (killed, or its machine is down); None while it
    beats, or when no worker has recorded the task."""
    client = _client(broker_url)
    who = client.get(f"cnn:task:{task_id}")
    if who is None:
        return None
    who = who.decode()
    return None if client.exists(f"cnn:alive:{who}") else who
