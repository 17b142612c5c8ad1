"""Issue 30, past one machine: the project's runs distributed to Celery workers through a Redis broker, on an
instance in PostgreSQL, exactly as deploy/cluster/dagster.yaml configures it, with every server started by the
project's own script (cnn_pipelines.cluster.servers) on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines_tests.conftest import REPO_ROOT, free_port, need_servers, server_dir

pytestmark = pytest.mark.timeout(300)
KEYS = ["2021-06-14", "2021-06-15", "2021-06-16", "2021-06-17"]


@pytest.fixture(scope="module")
def cluster(postgres):
    """Redis, two workers and the daemon around the module's Postgres; yields (env, worker pids, folder)."""
    from cnn_pipelines.cluster import servers

    need_servers("redis", "celery")
    base = server_dir("cnn-cluster-")
    home = base / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "cluster" / "dagster.yaml", home / "dagster.yaml")
    broker = servers.start_redis(base / "redis", free_port())
    env = {**os.environ, "DAGSTER_HOME": str(home), "CNN_POSTGRES_URL": postgres, "CNN_CELERY_BROKER": broker,
           "CNN_LAKE_ROOT": str(base / "lake"), "CNN_PRICE_SOURCE": "synthetic", "CNN_SYNTHETIC_TICKERS": "8"}
    saved = dict(os.environ)
    os.environ.update(env)  # the workers inherit it, and DagsterInstance.get() below reads DAGSTER_HOME
    workers = {}
    daemon = None
    try:
        workers = {name: servers.start_worker(base / "workers", name) for name in ("w1", "w2")}
        daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                                   "workspace.yaml"], cwd=REPO_ROOT, env=env, stdout=open(base / "daemon.log", "wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        yield env, workers, base
    finally:
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=30)
        for name in workers:
            servers.stop_worker(base / "workers", name)
        servers.stop_redis(base / "redis")
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(base, ignore_errors=True)


def test_a_backfill_runs_one_run_per_partition_on_whichever_worker_is_free(cluster):
    """`dagster job backfill` of four weekday partitions: the daemon's queued run coordinator hands each run to
    the Celery run launcher, the runs execute inside the two worker processes (not in the daemon), each worker
    imported TensorFlow and the project once however many runs it took, and the shared lake holds every day."""
    env, workers, base = cluster
    dagster = str(Path(sys.executable).with_name("dagster"))
    out = subprocess.run([dagster, "job", "backfill", "-w", "workspace.yaml", "-j", "price_history_job",
                          "--partitions", ",".join(KEYS), "--noprompt"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    with dg.DagsterInstance.get() as instance:
        deadline = time.time() + 180
        while True:
            runs = instance.get_runs()
            if len(runs) == len(KEYS) and all(r.is_finished for r in runs):
                break
            assert time.time() < deadline, [(r.status, r.tags.get("dagster/partition")) for r in runs]
            time.sleep(1)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
        assert sorted(r.tags["dagster/partition"] for r in runs) == KEYS
        assert all(r.tags.get("dagster-celery/task_id") for r in runs)   # sent through the broker
        executed = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        pids = {r.run_id: {e.dagster_event.pid for e in instance.all_logs(r.run_id, of_type=executed)}
                for r in runs}
    assert all(p and p <= set(workers.values()) for p in pids.values()), (pids, workers)
    logs = {name: (base / "workers" / f"{name}.log").read_text() for name in workers}
    for name, text in logs.items():
        ran = len(re.findall(r"Task execute_job\[.*\] succeeded", text))
        imports = len(re.findall(r"cnn worker \d+: TensorFlow and the project's definitions imported", text))
        assert imports == 1 and ran >= 1, (name, ran, imports)   # both took runs; one import each
    assert lake.materialized_keys(Path(env["CNN_LAKE_ROOT"]), "raw_prices") == KEYS


def test_training_runs_are_limited_per_cluster_by_their_tag(cluster):
    """The cluster's run coordinator holds back runs that train (research, nightly, audit and vision runs
    carry cnn/trains) beyond its limit, so they do not pile onto busy workers' cores."""
    from cnn_pipelines.cluster import TRAINS
    from cnn_pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    (key, value), = TRAINS.items()
    assert any(lim["key"] == key and lim["value"] == value and lim["limit"] >= 1 for lim in limits)
    for job in ("research_job", "nightly_job", "audit_job", "vision_job"):
        assert defs.resolve_job_def(job).tags.get(key) == value, job
    assert key not in defs.resolve_job_def("price_history_job").tags
