"""Promoting a build from the CLI: the same `promote_build` job the Launchpad runs, executed in
this process, so the production asset is recorded either way."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus

from sheen_pipeline.runs.ended import failure_reason
from sheen_pipeline.runs.local import SILENT_LOGGERS, execute_here
from sheen_pipeline.runs.names import PROMOTE_JOB_NAME
from sheen_pipeline.runs.origins import job_named, local_origins


class PromotionFailed(RuntimeError):
    """The promotion run failed; the message is its step's error."""


def run_promotion(
    instance: DagsterInstance, build_id: str, promoted_by: str, force: bool = False
) -> None:
    """Promote the build through a run of the promotion job; PromotionFailed saying why."""
    remote, code = local_origins(PROMOTE_JOB_NAME)
    config = {"build_id": build_id, "promoted_by": promoted_by, "force": force}
    run = instance.create_run_for_job(
        job_named(PROMOTE_JOB_NAME),
        run_config={**SILENT_LOGGERS, "ops": {"promote_to_production": {"config": config}}},
        remote_job_origin=remote,
        job_code_origin=code,
    )
    execute_here(instance, run)
    finished = instance.get_run_by_id(run.run_id)
    if finished is None or finished.status != DagsterRunStatus.SUCCESS:
        raise PromotionFailed(failure_reason(instance, run.run_id))
