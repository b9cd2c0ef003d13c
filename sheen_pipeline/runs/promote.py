"""Promoting a build from the CLI: the same `promote_build` job the Launchpad runs, executed in
this process, so the production asset is recorded either way."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus

from sheen_pipeline.runs.local import execute_here
from sheen_pipeline.runs.names import PROMOTE_JOB_NAME
from sheen_pipeline.runs.origins import job_named, local_origins

# The command prints the step's reason itself, as one line: nothing of the run's log is shown.
SILENT_LOGGERS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


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
        raise PromotionFailed(_step_error(instance, run.run_id))


def _step_error(instance: DagsterInstance, run_id: str) -> str:
    """The step's own words: a refusal's description, else the innermost error's message."""
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.is_step_failure:
            continue
        failure = event.step_failure_data
        if failure.user_failure_data is not None and failure.user_failure_data.description:
            return failure.user_failure_data.description
        error = failure.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return error.message.strip().splitlines()[0]
    return f"the promotion run {run_id} failed"
