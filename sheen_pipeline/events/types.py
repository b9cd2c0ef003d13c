"""Event types and the event record every consumer sees."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class EventType(StrEnum):
    BUILD_STARTED = "build_started"
    PLAN_PARTIAL = "plan_partial"
    PLAN_PARTIAL_RETRACTED = "plan_partial_retracted"
    PLAN_GENERATED = "plan_generated"
    PLAN_WARNING = "plan_warning"
    PLAN_BLOCKED = "plan_blocked"
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_TIMEOUT = "task_timeout"
    BUILD_STEP_STARTED = "build_step_started"
    DEPLOY_STARTED = "deploy_started"
    DEPLOY_COMPLETED = "deploy_completed"
    PROMOTED = "promoted"
    PREVIEW_CHECKED = "preview_checked"
    REPAIR_STARTED = "repair_started"
    REPAIR_COMPLETED = "repair_completed"
    BUILD_COMPLETED = "build_completed"
    BUILD_FAILED = "build_failed"
    BUDGET_EXCEEDED = "budget_exceeded"
    COST_ANOMALY = "cost_anomaly"


TERMINAL_TYPES = frozenset(
    {EventType.BUILD_COMPLETED, EventType.BUILD_FAILED, EventType.PLAN_BLOCKED}
)


class BuildEvent(BaseModel):
    """`seq` orders events and is the cursor for readers; `id` is unique, for deduplication."""

    model_config = ConfigDict(frozen=True)

    seq: int
    id: str
    build_id: str
    type: EventType
    timestamp: datetime
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The JSON body of webhooks and API answers."""
        return self.model_dump(mode="json")
