"""Creating and launching runs of per-build jobs that the UI can re-execute: one function
launches a build's run, whoever asks (plan_build, an approval, the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance, DagsterRun, RunsFilter
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.remote_origin import RemoteJobOrigin
from dagster._core.storage.tags import (
    MAX_RETRIES_TAG,
    PARENT_RUN_ID_TAG,
    ROOT_RUN_ID_TAG,
    TAGS_TO_MAYBE_OMIT_ON_RETRY,
    WILL_RETRY_TAG,
)

from sheen_pipeline.runs.names import PLAN_JOB_NAME, build_job_name
from sheen_pipeline.runs.origins import job_named, local_origins, reconstructable_job
from sheen_pipeline.runs.tags import BUILD_ID, PLAN_RUN_ID


def create_build_run(
    instance: DagsterInstance,
    build_id: str,
    plan_run: DagsterRun,
    run_config: Mapping[str, Any] | None = None,
) -> DagsterRun:
    """A not-yet-started run of the build's job, with the plan run's origins and the build's
    tags."""
    job = job_named(build_job_name(build_id))
    if plan_run.remote_job_origin is not None and plan_run.job_code_origin is not None:
        remote_origin = RemoteJobOrigin(plan_run.remote_job_origin.repository_origin, job.name)
        code_origin = plan_run.job_code_origin._replace(job_name=job.name)
    else:
        remote_origin, code_origin = local_origins(job.name)
    return instance.create_run_for_job(
        job,
        execution_plan=create_execution_plan(job, run_config=run_config),
        run_config=run_config,
        tags={**job.run_tags, PLAN_RUN_ID: plan_run.run_id},
        remote_job_origin=remote_origin,
        job_code_origin=code_origin,
    )


def create_retry_run(instance: DagsterInstance, parent: DagsterRun) -> DagsterRun:
    """A re-execution from failure of parent, as the UI's button makes it (failed and not-yet-run
    steps only; the rest load their outputs from the parent), keeping its origins so the UI can
    re-execute it in turn."""
    job = reconstructable_job(parent.job_name)
    step_keys, known_state = KnownExecutionState.build_resume_retry_reexecution(
        instance=instance, parent_run=parent
    )
    plan = create_execution_plan(
        job, parent.run_config, step_keys_to_execute=step_keys, known_state=known_state
    )
    root_run_id = parent.root_run_id or parent.run_id
    kept = {k: v for k, v in parent.tags.items() if k not in TAGS_TO_MAYBE_OMIT_ON_RETRY}
    return instance.create_run_for_job(
        job.get_definition(),
        execution_plan=plan,
        run_config=parent.run_config,
        tags={
            **kept,
            PARENT_RUN_ID_TAG: parent.run_id,
            ROOT_RUN_ID_TAG: root_run_id,
        },
        root_run_id=root_run_id,
        parent_run_id=parent.run_id,
        remote_job_origin=parent.remote_job_origin,
        job_code_origin=parent.job_code_origin,
    )


def launch_build_run(
    instance: DagsterInstance, build_id: str, plan_run: DagsterRun | None = None
) -> DagsterRun:
    """Queue a run of the build's job (the daemon starts it); returns the run."""
    run = create_build_run(instance, build_id, plan_run or plan_run_of(instance, build_id))
    instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
    return run


def plan_run_of(instance: DagsterInstance, build_id: str) -> DagsterRun:
    runs = instance.get_runs(RunsFilter(job_name=PLAN_JOB_NAME, tags={BUILD_ID: build_id}), limit=1)
    if not runs:
        raise LookupError(f"no {PLAN_JOB_NAME} run for build {build_id}")
    return runs[0]


def will_be_retried(run: DagsterRun) -> bool:
    """The instance's run_retries will re-execute this failed run (it failed before its steps
    did), so its build is not over yet."""
    return run.tags.get(WILL_RETRY_TAG) == "true"


def fail_for_good(instance: DagsterInstance, run: DagsterRun, reason: str) -> None:
    """Fail a run that run_retries must not bring back (its build has already ended)."""
    instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: "0"})
    instance.report_run_failed(run, reason)
