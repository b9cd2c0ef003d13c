"""One model per event type: what each event carries. Emitters build these, the stored data
(and so webhook bodies and API answers) is their JSON, and readers parse it back with `parse`."""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sheen_pipeline.events.types import BuildEvent, EventType
from sheen_pipeline.models import FileArtifact, RecoveryStep, Task, TokenUsage


class EventPayload(BaseModel):
    """Fields left at None are not stored, so an optional field is either there or absent.
    Unknown fields are ignored when reading, so events stored by other versions still parse."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: ClassVar[EventType]

    def describe(self) -> str:
        """One readable line, for the CLI."""
        raise NotImplementedError

    def data(self) -> dict[str, Any]:
        dumped = self.model_dump(mode="json")
        return {k: v for k, v in dumped.items() if v is not None or k in self.model_fields_set}


def _cost(usage: TokenUsage) -> str:
    return "cost unknown" if usage.cost_usd is None else f"cost ${usage.cost_usd}"


class BuildStarted(EventPayload):
    """The build was recorded (with its request), or a run re-executes it."""

    type = EventType.BUILD_STARTED
    project_id: str | None = None
    user_id: str | None = None
    prompt: str | None = None
    run_id: str | None = None
    reexecution: bool | None = None
    base_build_id: str | None = None  # the version this build changes

    def describe(self) -> str:
        if self.reexecution:
            return "re-execution started"
        return f"planning a change of {self.base_build_id}" if self.base_build_id else "planning"


class PlanPartial(EventPayload):
    type = EventType.PLAN_PARTIAL
    task: Task

    def describe(self) -> str:
        task = self.task
        return f"plan_partial: task {task.id} ({task.type.value} {task.input.target_path})"


class PlanPartialRetracted(EventPayload):
    type = EventType.PLAN_PARTIAL_RETRACTED
    task_ids: list[str]

    def describe(self) -> str:
        return f"plan_partial retracted: {', '.join(self.task_ids)} (the answer was replaced)"


class PlanGenerated(EventPayload):
    type = EventType.PLAN_GENERATED
    summary: str
    tasks: list[Task]
    recovery: list[RecoveryStep]
    provider: str
    model: str
    usage: TokenUsage
    cache_hit: bool
    estimated_cost_usd: Decimal | None = None  # the most its tasks may cost

    def describe(self) -> str:
        return (
            f"plan ready with {len(self.tasks)} tasks "
            f"(provider {self.provider}, model {self.model})"
        )


class PlanWarning(EventPayload):
    type = EventType.PLAN_WARNING
    warning: str

    def describe(self) -> str:
        return f"plan_warning: {self.warning}"


class PlanBlockedEvent(EventPayload):
    type = EventType.PLAN_BLOCKED
    cycles: list[list[str]]
    recovery: list[RecoveryStep]

    def describe(self) -> str:
        return f"plan blocked, waiting for approval: cycles {self.cycles}"


def this_worker() -> str:
    """host/pid of the process doing a task: with Celery, steps run on many machines."""
    return f"{socket.gethostname()}/{os.getpid()}"


class TaskStarted(EventPayload):
    type = EventType.TASK_STARTED
    task_id: str
    name: str
    attempt: int
    worker: str = Field(default_factory=this_worker)

    def describe(self) -> str:
        return f"task {self.task_id} started"


class TaskCompleted(EventPayload):
    type = EventType.TASK_COMPLETED
    task_id: str
    files: list[FileArtifact]
    usage: TokenUsage
    heals: int
    cache_hit: bool
    worker: str = Field(default_factory=this_worker)

    def describe(self) -> str:
        return f"task {self.task_id} done: {', '.join(f.path for f in self.files)}"


class TaskFailed(EventPayload):
    type = EventType.TASK_FAILED
    task_id: str
    error: str
    attempt: int
    will_retry: bool

    def describe(self) -> str:
        return f"task {self.task_id} failed: {self.error}"


class TaskTimedOut(EventPayload):
    type = EventType.TASK_TIMEOUT
    task_id: str
    timeout_s: float

    def describe(self) -> str:
        return f"task {self.task_id} timed out after {self.timeout_s:g}s"


class BuildStepStarted(EventPayload):
    type = EventType.BUILD_STEP_STARTED
    builder: str

    def describe(self) -> str:
        return f"build started ({self.builder})"


class DeployStarted(EventPayload):
    type = EventType.DEPLOY_STARTED
    target: str

    def describe(self) -> str:
        return f"deploy started ({self.target})"


class DeployCompleted(EventPayload):
    """What the upload sent, and what the target already had (content-addressed)."""

    type = EventType.DEPLOY_COMPLETED
    target: str
    preview_url: str
    version_id: str | None
    uploaded_files: int
    reused_files: int
    uploaded_bytes: int
    reused_bytes: int

    def describe(self) -> str:
        return (
            f"deployed to {self.target}: {self.uploaded_files} files uploaded, "
            f"{self.reused_files} reused"
        )


class CheckOutcome(BaseModel):
    name: str
    blocking: bool
    passed: bool | None  # None: not run
    message: str


class PreviewChecked(EventPayload):
    """The browser checks of the preview, and where its screenshots are served."""

    type = EventType.PREVIEW_CHECKED
    checks: list[CheckOutcome]
    screenshots: dict[str, str]
    round: int = 0  # 0: the first check; n: after repair round n

    def describe(self) -> str:
        lines = [f"checks after repair round {self.round}"] if self.round else []
        for check in self.checks:
            state = {True: "passed", False: "FAILED", None: "not run"}[check.passed]
            kind = "blocking" if check.blocking else "warning"
            lines.append(f"check {check.name} ({kind}) {state}: {check.message}")
        return "\n".join(lines)


class RepairStarted(EventPayload):
    """Blocking checks failed: their failures go back to the model as a repair task."""

    type = EventType.REPAIR_STARTED
    round: int
    failures: list[str]

    def describe(self) -> str:
        return f"repair round {self.round} started: {'; '.join(self.failures)}"


class RepairCompleted(EventPayload):
    type = EventType.REPAIR_COMPLETED
    round: int
    files: list[FileArtifact]
    usage: TokenUsage

    def describe(self) -> str:
        paths = ", ".join(f.path for f in self.files)
        return f"repair round {self.round} done: {paths} ({_cost(self.usage)})"


class Promoted(EventPayload):
    type = EventType.PROMOTED
    project_id: str
    target: str
    production_url: str
    promoted_by: str
    previous_build_id: str | None

    def describe(self) -> str:
        return f"promoted to production of {self.project_id}: {self.production_url}"


class BuildCompleted(EventPayload):
    type = EventType.BUILD_COMPLETED
    preview_url: str
    files: list[str]
    usage: TokenUsage
    duration_s: float
    checks_passed: list[str] = []
    checks_warned: list[str] = []  # failed or not run, but not blocking
    screenshots: dict[str, str] = {}

    def describe(self) -> str:
        return f"build completed: {self.preview_url} ({_cost(self.usage)})"


class BuildFailed(EventPayload):
    """`usage` is what the build cost up to its failure; absent when nothing ran (rejected or
    expired plans)."""

    type = EventType.BUILD_FAILED
    reason: str
    usage: TokenUsage | None = None

    def describe(self) -> str:
        return f"build failed: {self.reason}"


class BudgetExceededEvent(EventPayload):
    """A call (or a whole planned build) was refused before anything was spent on it."""

    type = EventType.BUDGET_EXCEEDED
    budget: str
    limit_usd: Decimal
    spent_usd: Decimal
    needed_usd: Decimal
    task_id: str | None = None

    def describe(self) -> str:
        return (
            f"budget exceeded: {self.budget} is ${self.limit_usd}, ${self.spent_usd} spent, "
            f"${self.needed_usd} needed"
        )


class CostAnomaly(EventPayload):
    """The build cost more than `factor` times its project's median of recent builds."""

    type = EventType.COST_ANOMALY
    cost_usd: Decimal
    median_usd: Decimal
    factor: float
    builds_compared: int

    def describe(self) -> str:
        return (
            f"cost anomaly: ${self.cost_usd} is over {self.factor:g}x the project's median "
            f"${self.median_usd} (last {self.builds_compared} builds)"
        )


PAYLOADS: dict[EventType, type[EventPayload]] = {
    payload.type: payload for payload in EventPayload.__subclasses__()
}


def parse(event_type: EventType, data: dict[str, Any]) -> EventPayload:
    return PAYLOADS[event_type].model_validate(data)


def describe(event: BuildEvent) -> str:
    """The event as one readable line, for the CLI."""
    return parse(event.type, event.data).describe()
