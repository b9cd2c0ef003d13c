"""Queue a `plan_build` run for a request, as the Launchpad would (the daemon launches it)."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRun

from sheen_pipeline.defs.launching import local_origins
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.tags import BUILD_ID, PROJECT_ID, REQUEST_ID, USER_ID
from sheen_pipeline.models import BuildRequest


def plan_run_config(build_id: str, request: BuildRequest) -> dict[str, object]:
    return {"ops": {"validate_request": {"config": {**request.model_dump(), "build_id": build_id}}}}


def submit_plan_run(
    instance: DagsterInstance, request_id: str, build_id: str, request: BuildRequest
) -> DagsterRun:
    remote, code = local_origins(plan_build.name)
    run = instance.create_run_for_job(
        plan_build,
        run_config=plan_run_config(build_id, request),
        tags={
            REQUEST_ID: request_id,
            BUILD_ID: build_id,
            PROJECT_ID: request.project_id,
            USER_ID: request.user_id,
        },
        remote_job_origin=remote,
        job_code_origin=code,
    )
    instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
    return run
