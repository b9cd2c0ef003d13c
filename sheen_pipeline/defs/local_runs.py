"""Running a whole build in this process (the CLI's way), as real runs the UI can re-execute."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterEvent, DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.execution.api import execute_run_iterator

from sheen_pipeline.defs.launching import create_build_run, local_origins, reconstructable_job
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.tags import BUILD_ID
from sheen_pipeline.fsutil import regular_files
from sheen_pipeline.models import BuildRequest, TokenUsage
from sheen_pipeline.pipeline import BuildPipeline

Report = Callable[[str], None]

QUIET_LOGGERS: Mapping[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class BuildOutcome:
    build_id: str | None
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


_STEP_LABELS = {"generate_plan": "planning", "build_site": "build", "deploy_preview": "deploy"}


def _step_label(step_key: str) -> str:
    return _STEP_LABELS.get(step_key, f"task {step_key}")


def describe_event(event: DagsterEvent) -> str | None:
    """One progress line for the step events a person cares about, None for the rest."""
    step = event.step_key
    if step is None or step in {"validate_request", "launch_build"}:
        return None
    label = _step_label(step)
    if event.is_step_start:
        return f"{label} started"
    if event.is_step_success:
        return f"{label} done"
    if event.is_step_failure:
        return f"{label} failed: {_failure_reason(event)}"
    return None


def _failure_reason(event: DagsterEvent) -> str:
    """The user's words: a Failure's description, else the innermost error without its type."""
    data = event.step_failure_data
    if data.user_failure_data and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    return error.message.strip().split(": ", 1)[-1]


def _execute(instance: DagsterInstance, run: DagsterRun, report: Report) -> None:
    for event in execute_run_iterator(reconstructable_job(run.job_name), run, instance):
        line = describe_event(event)
        if line:
            report(line)


def run_build(
    instance: DagsterInstance, pipeline: BuildPipeline, request: BuildRequest, report: Report
) -> BuildOutcome:
    """Plan, then build and deploy, each as a Dagster run executed here; never raises on failure."""
    remote, code = local_origins(plan_build.name)
    run_config = {
        **QUIET_LOGGERS,
        "ops": {
            "validate_request": {"config": request.model_dump()},
            "launch_build": {"config": {"submit": False}},
        },
    }
    plan_run = instance.create_run_for_job(
        plan_build, run_config=run_config, remote_job_origin=remote, job_code_origin=code
    )
    _execute(instance, plan_run, report)
    plan_run = instance.get_run_by_id(plan_run.run_id) or plan_run
    build_id = plan_run.tags.get(BUILD_ID)
    outcome = BuildOutcome(build_id=build_id, status="failed", dagster_run_ids=[plan_run.run_id])
    plan = pipeline.store.get_plan(build_id) if build_id else None
    if plan_run.status != DagsterRunStatus.SUCCESS or plan is None:
        outcome.error = pipeline.store.get_build(build_id).error if build_id else "planning failed"
        return outcome
    outcome.task_count = len(plan.tasks)
    report(
        f"plan ready with {len(plan.tasks)} tasks (build {plan.build_id}, provider {plan.provider})"
    )
    for step in plan.recovery:
        report(f"plan_warning: rung {step.rung}: {step.action}: {step.detail}")

    build_run = create_build_run(instance, plan, plan_run, run_config=QUIET_LOGGERS)
    outcome.dagster_run_ids.append(build_run.run_id)
    _execute(instance, build_run, report)
    record = pipeline.store.get_build(plan.build_id)
    outcome.status = record.status.value
    outcome.error = record.error
    outcome.usage = record.usage
    if record.preview_url and record.status.value == "succeeded":
        outcome.preview_url = record.preview_url
        preview = pipeline.settings.previews_dir / plan.build_id
        outcome.files = [p.relative_to(preview).as_posix() for p in regular_files(preview)]
    return outcome
