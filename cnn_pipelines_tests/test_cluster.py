"""Issue 30, past one machine: the project's runs distributed to Celery workers through a Redis broker, on an
instance in PostgreSQL, exactly as deploy/cluster/dagster.yaml configures it, with every server started by the
project's own script (cnn_pipelines.cluster.servers) on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import dagster as dg
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines_tests.conftest import REPO_ROOT, free_port, need_servers, server_dir

pytestmark = pytest.mark.timeout(300)
KEYS = ["2021-06-14", "2021-06-15", "2021-06-16", "2021-06-17"]


@pytest.fixture(scope="module")
def cluster():
    """`make cluster`'s servers (Postgres, Redis, two workers, the daemon, the web UI) on free ports, stopped by
    `make cluster-stop`'s code; yields (env, worker pids, folder, UI port)."""
    from cnn_pipelines.cluster import servers
    from cnn_pipelines.cluster.compare import STUDY_ENV
    from cnn_pipelines.storage import objects

    need_servers("postgres", "redis", "celery", "s3")
    base = server_dir("cnn-cluster-")
    ports = {"postgres": free_port(), "redis": free_port(), "s3": free_port(), "ui": free_port()}
    saved = dict(os.environ)
    os.environ.pop("CNN_LAKE_ROOT", None)  # the cluster's lake: its S3 server's bucket
    os.environ.update({**STUDY_ENV,
                       "CNN_LAKE_CATALOG_DIR": str(base / "catalogs"), "CNN_LAKE_CACHE": "",
                       "CNN_HEARTBEAT_TTL_S": "20"})  # a dead worker noticed in 20 s, not 2 minutes (the default)
    try:
        env = {**os.environ, **servers.up(base, REPO_ROOT, ports)}
        workers = {name: int((base / "workers" / f"{name}.pid").read_text()) for name in servers.WORKERS}
        yield env, workers, base, ports["ui"]
    finally:
        stopped = servers.down(base)
        os.environ.clear()
        os.environ.update(saved)
        objects._filesystem.cache_clear()
        shutil.rmtree(base, ignore_errors=True)
    assert stopped == ["ui", "daemon", *servers.WORKERS, "s3", "redis", "postgres"]


def _failures(instance, runs) -> list[tuple[str, str]]:
    """Each failed run's partition and the errors its events carry, so a failure says why."""
    failed = (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.ENGINE_EVENT)
    return [(r.tags.get("dagster/partition", ""),
             "\n".join(str(e.dagster_event.event_specific_data) for e in instance.all_logs(r.run_id)
                       if e.dagster_event and e.dagster_event.event_type in failed)[-4000:])
            for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]


def test_a_backfill_runs_one_run_per_partition_on_whichever_worker_is_free(cluster):
    """A backfill of four weekday partitions, one run per partition submitted to the instance as `dagster job
    backfill` does (here from this process, sparing a CLI that imports the project again): the daemon's queued
    run coordinator hands each run to the Celery run launcher, the runs execute inside the two worker processes
    (not in the daemon), each worker imported TensorFlow and the project once however many runs it took, and
    the shared lake holds every day."""
    from cnn_pipelines.launch import create_run

    env, workers, base, _ = cluster
    with dg.DagsterInstance.get() as instance:
        for key in KEYS:
            run = create_run(instance, "price_history_job", {"dagster/partition": key})
            instance.submit_run(run.run_id, workspace=None)
        assert {r.status for r in instance.get_runs()} <= {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                                                          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS}
        deadline = time.time() + 180
        while True:
            runs = instance.get_runs()
            if len(runs) == len(KEYS) and all(r.is_finished for r in runs):
                break
            assert time.time() < deadline, [(r.status, r.tags.get("dagster/partition")) for r in runs]
            time.sleep(1)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), _failures(instance, runs)
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
    assert env["CNN_LAKE_ROOT"].startswith("s3://")  # the shared lake is the S3 server's bucket
    assert lake.materialized_keys(lake.as_root(env["CNN_LAKE_ROOT"]), "raw_prices") == KEYS


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


def test_the_workers_app_registers_dagsters_run_tasks_on_the_configured_broker(cluster):
    """What a worker imports: the run tasks the launcher sends (execute_job, resume_job) on the broker of
    CNN_CELERY_BROKER, one task at a time per worker, a task acknowledged only once its run is done."""
    import importlib

    env, *_ = cluster
    app = importlib.import_module("cnn_pipelines.cluster.celery_app").app
    assert {"execute_job", "resume_job"} <= set(app.tasks)
    assert app.conf.broker_url == env["CNN_CELERY_BROKER"] and app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_acks_late is True


def test_the_cluster_serves_the_ui_on_localhost_only(cluster):
    import requests

    env, _, base, port = cluster
    deadline = time.time() + 120
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.time() < deadline, (base / "ui.log").read_text()[-2000:]
        time.sleep(1)
    listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    for p in (port, int(env["CNN_CELERY_BROKER"].split(":")[2].split("/")[0]),
              int(env["CNN_POSTGRES_URL"].rsplit(":", 1)[1].split("/")[0]), int(env["CNN_S3_ENDPOINT"].rsplit(":", 1)[1])):
        bound = {line.split()[3] for line in listening.splitlines()[1:] if line.split()[3].endswith(f":{p}")}
        assert bound == {f"127.0.0.1:{p}"}, (p, bound)


def test_bad_configuration_fails_at_start_naming_the_setting_and_the_server(tmp_path):
    """A worker pointed at a broker that is not there, a database that is down and a lake it cannot write stops
    at start with one message naming each setting, not with a traceback inside its first run."""
    from cnn_pipelines.cluster.servers import ServerError, check_cluster_env, start_worker

    need_servers("celery")
    closed = free_port()
    (tmp_path / "a-file").write_text("")
    bad = {"CNN_POSTGRES_URL": f"postgresql+psycopg2://dagster:secret@127.0.0.1:{closed}/dagster",
           "CNN_CELERY_BROKER": f"redis://127.0.0.1:{closed}/0", "CNN_LAKE_ROOT": str(tmp_path / "a-file" / "lake"),
           "DAGSTER_HOME": str(tmp_path)}
    with pytest.raises(ServerError) as err:
        check_cluster_env(bad, timeout_s=2)
    text = str(err.value)
    assert f"CNN_POSTGRES_URL: cannot reach the database at postgresql+psycopg2://dagster:***@127.0.0.1:{closed}" in text
    assert "secret" not in text
    assert f"CNN_CELERY_BROKER: cannot reach the broker at redis://127.0.0.1:{closed}/0" in text
    assert f"CNN_LAKE_ROOT: {tmp_path / 'a-file' / 'lake'} is not writable here" in text
    saved = dict(os.environ)
    os.environ.update(bad)
    try:
        pid = start_worker(tmp_path / "workers", "bad")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    deadline = time.time() + 60
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("a worker with a wrong broker kept running")
    assert os.waitstatus_to_exitcode(status) != 0
    log = (tmp_path / "workers" / "bad.log").read_text()
    assert "CNN_CELERY_BROKER: cannot reach the broker" in log and "the cluster configuration does not work" in log


def test_the_servers_command_line_says_what_is_wrong_and_exits_non_zero(tmp_path, capsys, monkeypatch):
    from cnn_pipelines.cluster.servers import main

    need_servers("celery")
    monkeypatch.setenv("CNN_CELERY_BROKER", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.delenv("CNN_POSTGRES_URL", raising=False)
    monkeypatch.setenv("CNN_LAKE_ROOT", str(tmp_path / "lake"))
    assert main(["cluster", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "CNN_POSTGRES_URL is not set" in err and "CNN_CELERY_BROKER: cannot reach the broker" in err
    assert main(["redis", "stop", str(tmp_path / "redis")]) == 1
    assert f"redis-server is not running here ({tmp_path / 'redis' / 'redis.pid'} is missing)" in capsys.readouterr().err
    assert main(["cluster", "stop", str(tmp_path / "none")]) == 0
    assert "stopped: nothing was running" in capsys.readouterr().out


@pytest.fixture(scope="module")
def study(cluster, tmp_path_factory):
    """The study on the single machine and on the cluster (cluster/compare.py): its last 6 weekday partitions
    through the daemon's queue, one run per partition, and two research months as an asset backfill launched
    through the UI's GraphQL API, to the Celery workers (each with its own disk, as on separate machines), with
    the lake on the S3 server."""
    from cnn_pipelines.cluster.compare import single_vs_cluster

    env, _, _, ui_port = cluster
    return single_vs_cluster(env, tmp_path_factory.mktemp("single"), REPO_ROOT, f"http://127.0.0.1:{ui_port}")


@pytest.mark.timeout(600)  # the study fixture runs here: the single machine's run, then the cluster's
def test_a_cluster_backfill_on_the_s3_lake_gives_the_single_machine_answers(cluster, study):
    """Issue 30's invariant: every table and the models' ensembles agree to 1e-6."""
    env, workers, *_ = cluster
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in study.runs), [r.status for r in study.runs]
    assert study.day_runs == 6 and all(p and p <= set(workers.values()) for p in study.pids.values())
    # the asset backfill's runs: Dagster runs an asset that depends on its own earlier partition (feature_selection,
    # image_layout, cnn_model) alone, so a month takes several runs; each month trained after its source month
    months = study.runs[6:]
    assert sorted({r.tags["dagster/partition"] for r in months}) == study.periods
    assert all(r.tags.get("dagster/backfill") and r.tags.get("dagster-celery/task_id") for r in months)
    assert study.trained_after_its_source(), study.month_runs
    assert len(set().union(*study.pids.values())) == 2, study.pids   # both workers took runs
    assert study.differences == [] and study.identical
    print(f"single machine {study.single_s:.0f}s; cluster runs {study.cluster_s:.0f}s on workers {study.pids}")


def test_lake_differences_names_the_table_that_disagrees(cluster, study, tmp_path):
    """The comparison can fail: a copy of the single machine's lake with one price changed by 1e-4 is reported."""
    from cnn_pipelines.cluster.compare import lake_differences

    copy = tmp_path / "lake"
    shutil.copytree(study.local_root, copy)
    day = lake.materialized_keys(copy, "raw_prices")[-1]
    prices = lake.read_partitions(copy, "raw_prices", [day])
    lake.write_partitions(copy, "raw_prices", prices.assign(close=prices["close"] + 1e-4), [day])
    found = lake_differences(copy, study.local_root, study.periods)
    assert len(found) == 1 and found[0].startswith("raw_prices:"), found


def test_a_killed_worker_loses_nothing_its_run_is_retried_on_another_from_its_checkpoint(cluster, study):
    """A research month is trained afresh (its checkpoints removed from the bucket and the workers' disks); its
    worker is frozen as soon as the lake holds an epoch's checkpoint and then killed. The heartbeat-aware launcher reports
    the dead worker, run monitoring marks the run failed, the daemon re-executes it from its failure on the other
    worker, and training resumes after the epochs in the lake instead of starting over."""
    import json

    from cnn_pipelines.cluster.compare import submit, wait_for
    from cnn_pipelines.storage import objects
    from cnn_pipelines.trading.research.assets import CHAIN_START_TAG, RS

    env, workers, base, _ = cluster
    month = study.periods[-1]
    ckpt = lake.as_root(env["CNN_LAKE_ROOT"]) / "models" / "cnn" / month
    objects.remove(objects.local_mirror(ckpt))
    for cache in (base / "workers").glob("*-lake-cache"):
        shutil.rmtree(cache / objects.key(ckpt), ignore_errors=True)  # each worker's mirror of the bucket
    state = ckpt / "state.json"
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(submit(instance, "research_job", month, {CHAIN_START_TAG: month}))
        deadline, victim, done = time.time() + 240, None, 0
        while time.time() < deadline:
            if victim is None:
                starts = instance.all_logs(run.run_id, of_type={dg.DagsterEventType.RUN_START})
                victim = starts[0].dagster_event.pid if starts else None
            try:
                done = len(json.loads(objects.read_object(state)[0])["epochs"])
            except FileNotFoundError:
                done = 0
            if victim and done >= 1:
                os.kill(victim, signal.SIGSTOP)  # frozen at once, then killed: no chance to finish the month
                os.kill(victim, signal.SIGKILL)
                break
            time.sleep(0.05)
        assert victim in workers.values() and 1 <= done < RS.epochs, (
            victim, done, instance.get_run_by_id(run.run_id).status,
            [e.message for e in instance.all_logs(run.run_id)][-8:])
        failed = wait_for(instance, [run.run_id], timeout_s=120)[0]
        assert failed.status == dg.DagsterRunStatus.FAILURE
        why = [e.message for e in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.RUN_FAILURE})]
        assert any("stopped sending heartbeats" in m for m in why), why
        deadline = time.time() + 60
        while not (retries := [r for r in instance.get_runs() if r.tags.get("dagster/parent_run_id") == run.run_id]):
            assert time.time() < deadline, "the daemon did not retry the run"
            time.sleep(1)
        retry = wait_for(instance, [retries[0].run_id], timeout_s=240)[0]
        assert retry.status == dg.DagsterRunStatus.SUCCESS
        other = set(workers.values()) - {victim}
        ran_on = {e.dagster_event.pid for e in instance.all_logs(retry.run_id, of_type={dg.DagsterEventType.RUN_START})}
        assert ran_on == other, (ran_on, other)
        logs = " ".join(e.message or "" for e in instance.all_logs(retry.run_id))
    resumed = re.search(r"resuming after epoch (\d+)", logs)
    assert resumed and int(resumed.group(1)) >= done, logs[-2000:]
    final = json.loads(objects.read_object(state)[0])
    assert [e["epoch"] for e in final["epochs"]] == list(range(1, len(final["epochs"]) + 1))


def test_the_launcher_tells_a_dead_worker_from_a_busy_one_by_its_heartbeat(cluster):
    """What run monitoring asks the cluster's launcher about a started run: a run whose worker beats is running,
    one whose worker stopped beating failed (naming the worker), one no worker recorded is Celery's answer."""
    import uuid

    from cnn_pipelines.cluster import heartbeat

    env, *_ = cluster
    broker = env["CNN_CELERY_BROKER"]
    live, dead, unknown = (f"task-{uuid.uuid4().hex[:8]}" for _ in range(3))
    beating = heartbeat.start(broker, every_s=0.2)  # this process beats as a worker would, and takes a task
    try:
        _launcher_answers(broker, live, dead, unknown)
    finally:
        beating.kill()  # it ignores SIGTERM (see heartbeat.start)
        beating.wait()


def _launcher_answers(broker: str, live: str, dead: str, unknown: str) -> None:
    import uuid

    import redis
    from dagster._core.launcher import WorkerStatus
    from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

    from cnn_pipelines.cluster import heartbeat
    from cnn_pipelines.cluster.launcher import HeartbeatCeleryRunLauncher

    heartbeat.took(broker, live)
    redis.Redis.from_url(broker).set(f"cnn:task:{dead}", "gone-host:4242")  # a worker that never beats again
    deadline = time.time() + 5
    while heartbeat.task_worker(broker, live) != (heartbeat.worker_id(), True):
        assert time.time() < deadline
        time.sleep(0.1)
    assert heartbeat.task_worker(broker, dead) == ("gone-host:4242", False)
    assert heartbeat.task_worker(broker, unknown) == (None, False)
    launcher = HeartbeatCeleryRunLauncher(default_queue="dagster", broker=broker, backend=broker)

    def health(task_id: str):
        return launcher.check_run_worker_health(dg.DagsterRun(job_name="j", run_id=str(uuid.uuid4()),
                                                              tags={DAGSTER_CELERY_TASK_ID_TAG: task_id}))

    assert health(live).status == WorkerStatus.RUNNING   # Celery has forgotten the task: the heartbeat answers
    failed = health(dead)
    assert failed.status == WorkerStatus.FAILED and "gone-host:4242 stopped sending heartbeats" in failed.msg
    assert health(unknown).status == WorkerStatus.UNKNOWN


def test_a_worker_holding_its_gil_for_longer_than_the_ttl_still_beats_and_stops_when_it_dies(cluster):
    """A run that holds the worker's GIL in one long C call (here a builtin sum over a huge range) must not look
    like a dead worker, or the monitor fails a live run and starts a second copy: the beats come from their own
    process, which a Ctrl-C to the worker's process group does not stop either. When the worker is killed the
    beats stop and its key expires within the TTL."""
    import socket
    import sys

    import redis

    env, *_ = cluster
    broker = env["CNN_CELERY_BROKER"]
    code = ("import os, time\nfrom cnn_pipelines.cluster import heartbeat\n"
            "heartbeat.start(os.environ['CNN_CELERY_BROKER'], every_s=0.2)\ntime.sleep(1)\n"
            "print('holding the GIL', flush=True)\nsum(range(10 ** 10))\n")
    worker = subprocess.Popen([sys.executable, "-c", code], env={**env, "CNN_HEARTBEAT_TTL_S": "1"},
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    client, key = redis.Redis.from_url(broker), f"cnn:alive:{socket.gethostname()}:{worker.pid}"
    try:
        assert worker.stdout.readline().strip() == "holding the GIL"
        seen = []
        for i in range(40):  # 4 s, four times the TTL
            if i == 20:  # a Ctrl-C in the worker's terminal reaches its process group; the run goes on, so must the beats
                os.killpg(worker.pid, signal.SIGINT)
            seen.append(bool(client.exists(key)))
            time.sleep(0.1)
        assert all(seen) and worker.poll() is None, seen
    finally:
        worker.kill()
        worker.wait()
    deadline = time.time() + 5
    while client.exists(key):
        assert time.time() < deadline, "the beats went on after the worker died"
        time.sleep(0.1)
