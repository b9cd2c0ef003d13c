"""Running a whole build in this process (the CLI's way), as real runs the UI can re-execute."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.execution.api import execute_run_iterator

from sheen_pipeline.background import repeating
from sheen_pipeline.events.payloads import describe
from sheen_pipeline.models import BuildRequest, Plan, TokenUsage, new_build_id
from sheen_pipeline.runs.ended import failure_reason, free_pool_slots
from sheen_pipeline.runs.launch import create_build_run, create_retry_run, plan_run_of
from sheen_pipeline.runs.names import PLAN_JOB_NAME, build_job_name
from sheen_pipeline.runs.origins import job_named, local_origins, reconstructable_job
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus, UnknownBuild
from sheen_pipeline.store.files import Stage

Report = Callable[[str], None]

PROGRESS_POLL_S = 0.1
# Progress and failures are read from the build's events; Dagster's own console lines (each
# skipped step as an ERROR, the failure's stack trace) would repeat them. The UI keeps them all.
SILENT_LOGGERS: Mapping[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
ENDED = {BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.BLOCKED}
# the broker answered and said no (a wrong virtual host, user or password): no retry will help
BROKER_REFUSALS = ("amqp.exceptions.NotAllowed", "amqp.exceptions.AccessRefused")


@dataclass
class BuildOutcome:
    build_id: str
    status: str
    preview_url: str | None = None
    files: list[str] = field(default_factory=list)
    task_count: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    dagster_run_ids: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "status": self.status,
            "preview_url": self.preview_url,
            "files": self.files,
            "task_count": self.task_count,
            "cost_usd": None if self.usage.cost_usd is None else float(self.usage.cost_usd),
            "tokens": {
                "input": self.usage.input_tokens,
                "output": self.usage.output_tokens,
                "cache_read": self.usage.cache_read_tokens,
                "cache_write": self.usage.cache_write_tokens,
                "total": self.usage.total_tokens,
            },
            "dagster_run_ids": self.dagster_run_ids,
            "error": self.error,
        }


def _planning_outcome(
    instance: DagsterInstance, service: BuildService, outcome: BuildOutcome, plan_run: DagsterRun
) -> BuildOutcome:
    """A plan that did not lead to a build: blocked (rung D) or failed, as its record says (or
    its run, when the failure could not be recorded)."""
    try:
        record = service.store.get_build(outcome.build_id)
    except UnknownBuild:
        outcome.error = "planning failed before the build was recorded"
        return outcome
    if record.status is BuildStatus.BLOCKED:
        outcome.status = record.status.value
    outcome.error = record.error or failure_reason(instance, plan_run.run_id)
    outcome.usage = record.usage
    return outcome


def execute_here(instance: DagsterInstance, run: DagsterRun) -> None:
    """Execute the run in this process, to its end; whatever its steps claimed of the pools is
    free afterwards, however it ended."""
    try:
        for _event in execute_run_iterator(reconstructable_job(run.job_name), run, instance):
            pass
    finally:
        free_pool_slots(instance, run.run_id)


@contextmanager
def _reporting(service: BuildService, build_id: str, report: Report) -> Iterator[None]:
    """Progress is read from the build's stored events, as `sheen events --follow` reads it, so
    it does not matter where (or in which thread or process) the steps run."""
    cursor = 0

    def report_new() -> None:
        nonlocal cursor
        while batch := service.events.after(build_id, cursor):
            for event in batch:
                cursor = event.seq
                report(describe(event))

    try:
        with repeating(report_new, PROGRESS_POLL_S, "sheen-progress"):
            yield
    finally:
        report_new()  # what came after the last poll


def run_build(
    instance: DagsterInstance, service: BuildService, request: BuildRequest, report: Report
) -> BuildOutcome:
    """Plan, then build and deploy, each as a Dagster run executed here; never raises on failure.
    A plan that needs approval stops here with status awaiting_approval."""
    build_id = new_build_id()
    with _reporting(service, build_id, report):
        remote, code = local_origins(PLAN_JOB_NAME)
        run_config = {
            **SILENT_LOGGERS,
            "ops": {
                "validate_request": {"config": {**request.model_dump(), "build_id": build_id}},
                "launch_build": {"config": {"submit": False}},
            },
        }
        plan_run = instance.create_run_for_job(
            job_named(PLAN_JOB_NAME),
            run_config=run_config,
            remote_job_origin=remote,
            job_code_origin=code,
        )
        execute_here(instance, plan_run)
        plan_run = instance.get_run_by_id(plan_run.run_id) or plan_run
        outcome = BuildOutcome(build_id, status="failed", dagster_run_ids=[plan_run.run_id])
        plan = service.store.get_plan(build_id)
        if plan_run.status != DagsterRunStatus.SUCCESS or plan is None:
            return _planning_outcome(instance, service, outcome, plan_run)
        outcome.task_count = len(plan.tasks)
        if service.store.get_build(build_id).status is BuildStatus.AWAITING_APPROVAL:
            outcome.status = BuildStatus.AWAITING_APPROVAL.value
            return outcome
        return _run_build_job(instance, service, plan, plan_run, outcome)


def run_approved_build(
    instance: DagsterInstance, service: BuildService, plan: Plan, report: Report
) -> BuildOutcome:
    """Run an approved plan's job here, as `sheen approve --here` does."""
    plan_run = plan_run_of(instance, plan.build_id)
    outcome = BuildOutcome(plan.build_id, "failed", task_count=len(plan.tasks))
    with _reporting(service, plan.build_id, report):
        return _run_build_job(instance, service, plan, plan_run, outcome)


def retry_build(
    instance: DagsterInstance, service: BuildService, build_id: str, report: Report
) -> BuildOutcome:
    """Re-execute the latest run of the build from failure, here."""
    runs = instance.get_runs(RunsFilter(job_name=build_job_name(build_id)), limit=1)
    if not runs:
        raise LookupError(f"build {build_id} has no run to retry")
    parent = runs[0]
    if parent.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        raise LookupError(
            f"the latest run of build {build_id} is {parent.status.value}, not failed"
        )
    plan = service.store.get_plan(build_id)
    assert plan is not None
    outcome = BuildOutcome(build_id, "failed", task_count=len(plan.tasks))
    with _reporting(service, build_id, report):
        return _finish_build_run(
            instance, service, plan, create_retry_run(instance, parent), outcome
        )


def _run_build_job(
    instance: DagsterInstance,
    service: BuildService,
    plan: Plan,
    plan_run: DagsterRun,
    outcome: BuildOutcome,
) -> BuildOutcome:
    build_run = create_build_run(instance, plan.build_id, plan_run, run_config=SILENT_LOGGERS)
    return _finish_build_run(instance, service, plan, build_run, outcome)


def _finish_build_run(
    instance: DagsterInstance,
    service: BuildService,
    plan: Plan,
    build_run: DagsterRun,
    outcome: BuildOutcome,
) -> BuildOutcome:
    outcome.dagster_run_ids.append(build_run.run_id)
    execute_here(instance, build_run)
    record = service.store.get_build(plan.build_id)
    if record.status not in ENDED:  # the run died before its steps could end the build
        reason = failure_reason(instance, build_run.run_id)
        service.fail(plan.build_id, f"the build run stopped: {_named(service, reason)}")
        record = service.store.get_build(plan.build_id)
    outcome.status = record.status.value
    outcome.error = record.error
    outcome.usage = record.usage
    if record.preview_url and record.status is BuildStatus.SUCCEEDED:
        outcome.preview_url = record.preview_url
        outcome.files = [f.path for f in service.files.stage_files(plan.build_id, Stage.DIST)]
    return outcome


def _named(service: BuildService, reason: str) -> str:
    """A broker error names the setting to look at."""
    if service.settings.executor == "celery" and reason.startswith(("kombu.", "amqp.")):
        refused = reason.startswith(BROKER_REFUSALS)
        what = "refused this client" if refused else "could not be reached"
        return f"the Celery broker (SHEEN_CELERY_BROKER) {what}: {reason}"
    return reason
