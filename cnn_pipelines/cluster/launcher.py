"""The cluster's run launcher: dagster-celery's, plus a health check that notices a dead worker.

Run monitoring asks the launcher whether a started run's worker is healthy; dagster-celery answers from the
Celery task's state, which stays ``STARTED`` when the worker is killed. This launcher also consults the worker
heartbeats (``heartbeat.py``): a started task whose worker stopped beating is a failed run worker, so the
monitor marks the run failed and the daemon's run retries re-execute it from its failure on a free worker,
where training resumes from the checkpoints in the lake.
"""

from __future__ import annotations

from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from cnn_pipelines.cluster import heartbeat


class HeartbeatCeleryRunLauncher(CeleryRunLauncher):
    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        result = super().check_run_worker_health(run)
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        # UNKNOWN too: Celery forgets a task's STARTED state after result_expires (a day), and the monitor would
        # fail a long run that is still going
        if result.status not in (WorkerStatus.RUNNING, WorkerStatus.UNKNOWN) or not task_id or not self.broker:
            return result
        worker, beating = heartbeat.task_worker(self.broker, task_id)
        if worker is None:
            return result
        if not beating:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"Celery worker {worker} stopped sending heartbeats "
                                        f"(no beat for {heartbeat.TTL_S} s): it was killed or its machine is down")
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"Celery worker {worker} is running it")
