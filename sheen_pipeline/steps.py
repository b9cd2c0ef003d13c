"""What running one step of a build means, whatever runs it: the build may run (approved, not
over its time), its run is recorded, and a failure is either worth another attempt (transient,
with retries left under SHEEN_TASK_RETRIES) or ends the build, failed, with what it spent. Error
text is redacted before anything stores it. The Dagster layer only maps the outcome onto its
retry policy (defs/build_job.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sheen_pipeline.approval import check_may_run
from sheen_pipeline.logs import log_context
from sheen_pipeline.models import TokenUsage
from sheen_pipeline.redaction import redact
from sheen_pipeline.service import BuildService, is_transient


class StepRetry(RuntimeError):
    """A transient failure with retries left: the step is tried again (message redacted)."""


class StepFailed(RuntimeError):
    """The step failed for good and the build with it; spent is what the build cost."""

    def __init__(self, message: str, spent: TokenUsage) -> None:
        super().__init__(message)
        self.spent = spent


@dataclass(frozen=True)
class StepRun:
    """Which build, run and attempt a step belongs to: node is the step's name in its run,
    label how errors name it ("task forms", "build")."""

    build_id: str
    run_id: str
    node: str
    label: str
    retry_number: int


@contextmanager
def build_step(service: BuildService, step: StepRun) -> Iterator[bool]:
    """One step; yields whether it has retries left. Raises StepRetry or StepFailed."""
    retries_left = step.retry_number < service.settings.task_retries
    with log_context(build_id=step.build_id, run_id=step.run_id, step=step.node):
        try:
            check_may_run(service, step.build_id)
            service.start_run(step.build_id, step.run_id)
            service.check_time_left(step.build_id)
            yield retries_left
        except Exception as error:
            message = redact(str(error), service.settings.secrets)
            if retries_left and is_transient(error):
                raise StepRetry(message) from None
            spent = service.fail(step.build_id, f"{step.label} failed: {message}")
            raise StepFailed(f"{step.label} failed: {message}", spent) from None
