"""Run a job of the `cnn_pipelines` code location in this process, recorded as a run OF that code location.

`job.execute_in_process` records runs with no code-location origin: the UI lists them under Runs but not under
their job, the timeline leaves them out and re-execution warns about a different version. Here the run is
created from the code location's own snapshot (the location name `workspace.yaml` gives), exactly as the UI or
`dagster job launch` would create it, and then executed here without a subprocess or a daemon.

    python -m cnn_pipelines.launch trading_job --partition-range 2026-01-05...2026-01-30
    python -m cnn_pipelines.launch raw_prices_job --partition 2026-01-05
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from functools import lru_cache

import dagster as dg
from dagster._core.execution.api import execute_run
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import InProcessCodeLocation
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

LOCATION = "cnn_pipelines"  # the location name in workspace.yaml
MODULE, ATTRIBUTE = "cnn_pipelines", "defs"


def partition_tags(partition: str | None = None, partition_range: tuple[str, str] | None = None) -> dict[str, str]:
    """Tags that make a run one partition, or a partition range as ONE run (single-run backfill policy)."""
    if partition and partition_range:
        raise ValueError("give a partition or a partition range, not both")
    if partition:
        return {PARTITION_NAME_TAG: partition}
    if partition_range:
        return {ASSET_PARTITION_RANGE_START_TAG: partition_range[0], ASSET_PARTITION_RANGE_END_TAG: partition_range[1]}
    return {}


@lru_cache(maxsize=4)
def _code_location(instance: dg.DagsterInstance) -> InProcessCodeLocation:
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(executable_path=sys.executable, module_name=MODULE,
                                                    attribute=ATTRIBUTE, working_directory=os.getcwd()),
        location_name=LOCATION)
    return InProcessCodeLocation(origin, instance)


def create_run(instance: dg.DagsterInstance, job_name: str, tags: Mapping[str, str] | None = None,
               run_config: Mapping | None = None) -> DagsterRun:
    """Create (not start) a run of ``job_name`` from the code location's snapshot, as the UI would."""
    from dagster._core.definitions.selector import JobSubsetSelector

    location = _code_location(instance)
    (repo,) = location.get_repositories().values()
    run_config = dict(run_config or {})
    remote_job = location.get_job(JobSubsetSelector(location_name=location.name, repository_name=repo.name,
                                                    job_name=job_name, op_selection=None))
    plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None,
                                       instance=instance).execution_plan_snapshot
    return instance.create_run(
        job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute, op_selection=None, status=None, root_run_id=None,
        parent_run_id=None, tags={**remote_job.tags, **(tags or {})}, job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan, parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
        asset_selection=None, asset_check_selection=None, asset_graph=repo.asset_graph)


def launch(instance: dg.DagsterInstance, job_name: str, *, partition: str | None = None,
           partition_range: tuple[str, str] | None = None, run_config: Mapping | None = None,
           tags: Mapping[str, str] | None = None) -> DagsterRun:
    """Create a run of the code location's ``job_name`` and execute it here, synchronously; the finished run."""
    run = create_run(instance, job_name, {**partition_tags(partition, partition_range), **(tags or {})}, run_config)
    recon = ReconstructableJob(ReconstructableRepository.for_module(MODULE, ATTRIBUTE, working_directory=os.getcwd()),
                               job_name)
    execute_run(recon, run, instance)
    return instance.get_run_by_id(run.run_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job")
    parser.add_argument("--partition", help="one partition key")
    parser.add_argument("--partition-range", help="FIRST...LAST, materialized as one run")
    parser.add_argument("--config-json", help="run config as JSON")
    args = parser.parse_args(argv)
    rng = tuple(args.partition_range.split("...")) if args.partition_range else None
    if rng is not None and len(rng) != 2:
        parser.error("--partition-range takes FIRST...LAST")
    from cnn_pipelines.instance import prepare

    run = launch(prepare(), args.job, partition=args.partition, partition_range=rng,
                 run_config=json.loads(args.config_json) if args.config_json else None)
    print(f"run {run.run_id} of {args.job}: {run.status.value}")
    return 0 if run.status == dg.DagsterRunStatus.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
