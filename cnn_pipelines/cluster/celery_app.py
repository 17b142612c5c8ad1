"""The Celery app a worker of the cluster runs: Dagster's run tasks (``dagster_celery``'s execute_job and
resume_job, which the instance's ``CeleryRunLauncher`` sends) on the broker named by ``CNN_CELERY_BROKER``.

    celery -A cnn_pipelines.cluster.celery_app worker --pool solo -Q dagster -n worker1@%h

A worker runs one Dagster run at a time in its own process (``--pool solo``): a training run uses every core
the worker has, and the process lives on, so TensorFlow and the project's definitions are imported once per
worker (at start, below), not once per run. Start one worker per run a machine should hold at once.
"""

from __future__ import annotations

import os

from celery import signals
from dagster_celery.make_app import make_app

from cnn_pipelines.cluster import heartbeat
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

BROKER_ENV = "CNN_CELERY_BROKER"


def broker_url() -> str:
    url = os.environ.get(BROKER_ENV, "").strip()
    if not url:
        raise RuntimeError(f"set {BROKER_ENV} to the broker's URL (e.g. redis://127.0.0.1:6379/0)")
    return url


if os.environ.get("CNN_WORKER_CHECK", "1") != "0":
    from cnn_pipelines.cluster.servers import check_cluster_env

    check_cluster_env()  # a worker with a wrong broker, database or lake stops here, saying which

BROKER = broker_url()
app = make_app({"broker": BROKER, "backend": BROKER, "include": [], "config_source": {
    "worker_prefetch_multiplier": 1,   # a free worker takes the next run; a busy one holds none back
    "task_acks_late": True,            # a run whose worker died goes back to the queue
    "broker_connection_retry_on_startup": True,
}, "task_default_queue": "dagster"})
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)


_beating = []


@signals.worker_ready.connect
def _beat(**_) -> None:
    """Heartbeats for the run monitor (cluster/heartbeat.py): a run whose worker dies is noticed and retried."""
    _beating.append(heartbeat.start(BROKER))


@signals.task_prerun.connect
def _took(task_id=None, **_) -> None:
    heartbeat.took(BROKER, task_id)

if os.environ.get("CNN_WORKER_PRELOAD", "1") != "0":
    import time

    _t0 = time.perf_counter()
    import cnn_pipelines.definitions  # noqa: F401,E402  TensorFlow and every asset, once per worker process

    print(f"cnn worker {os.getpid()}: TensorFlow and the project's definitions imported in "
          f"{time.perf_counter() - _t0:.1f} s", flush=True)
