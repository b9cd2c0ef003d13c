"""Plan approval: with SHEEN_REQUIRE_PLAN_APPROVAL, a planned build waits for a person, who
approves it (it runs), rejects it, or lets it expire (both end it with build_failed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sheen_pipeline.events.types import EventType
from sheen_pipeline.models import Plan
from sheen_pipeline.pipeline import BuildPipeline
from sheen_pipeline.store.builds import Approval, BuildStatus


class ApprovalError(RuntimeError):
    """The build cannot be approved or rejected in its current state; the message says why."""


def _plan_awaiting(pipeline: BuildPipeline, build_id: str) -> Plan:
    expire_stale(pipeline)
    record = pipeline.store.get_build(build_id)
    plan = pipeline.store.get_plan(build_id)
    if record.approval is not Approval.REQUIRED or plan is None:
        state = record.approval.value if record.approval else record.status.value
        raise ApprovalError(f"build {build_id} is not waiting for approval (it is {state})")
    return plan


def approve(pipeline: BuildPipeline, build_id: str) -> Plan:
    plan = _plan_awaiting(pipeline, build_id)
    if not pipeline.store.decide(build_id, Approval.APPROVED):
        raise ApprovalError(f"build {build_id} was decided by someone else meanwhile")
    return plan


def reject(pipeline: BuildPipeline, build_id: str, reason: str) -> None:
    _plan_awaiting(pipeline, build_id)
    message = f"plan rejected: {reason}"
    if not pipeline.store.decide(build_id, Approval.REJECTED, error=message):
        raise ApprovalError(f"build {build_id} was decided by someone else meanwhile")
    pipeline.events.emit(build_id, EventType.BUILD_FAILED, reason=message)


def expire_stale(pipeline: BuildPipeline, now: datetime | None = None) -> list[str]:
    """End every build that has waited longer than SHEEN_PLAN_APPROVAL_TTL_S."""
    ttl = pipeline.settings.plan_approval_ttl_s
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=ttl)
    expired = []
    for build_id in pipeline.store.awaiting_approval_since(cutoff):
        message = f"plan approval expired after {ttl}s"
        if pipeline.store.decide(build_id, Approval.EXPIRED, error=message):
            pipeline.events.emit(build_id, EventType.BUILD_FAILED, reason=message)
            expired.append(build_id)
    return expired


def check_may_run(pipeline: BuildPipeline, build_id: str) -> None:
    """Called when a run of the build starts: launching a waiting build (for example from the
    UI) approves it; a rejected or expired one may not run."""
    record = pipeline.store.get_build(build_id)
    if record.approval is Approval.REQUIRED and record.status is BuildStatus.AWAITING_APPROVAL:
        expire_stale(pipeline)
        pipeline.store.decide(build_id, Approval.APPROVED)
        record = pipeline.store.get_build(build_id)
    if record.approval in (Approval.REJECTED, Approval.EXPIRED):
        raise ApprovalError(f"build {build_id} may not run: {record.error}")
