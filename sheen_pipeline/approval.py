"""Plan approval, its states and every transition between them: with SHEEN_REQUIRE_PLAN_APPROVAL,
a planned build waits for a person, who approves it (it runs), rejects it, or lets it expire
(both end it with build_failed). Callers (plan_build, the build steps, the sensors, the CLI)
only call these functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sheen_pipeline.events.payloads import BuildFailed
from sheen_pipeline.models import Plan
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import Approval, BuildStatus


class ApprovalError(RuntimeError):
    """The build cannot be approved or rejected in its current state; the message says why."""


def hold_for_approval(service: BuildService, build_id: str) -> bool:
    """Right after planning: whether the build must wait for a decision (it then does)."""
    if not service.settings.require_plan_approval:
        return False
    service.store.await_approval(build_id)
    return True


def _plan_awaiting(service: BuildService, build_id: str) -> Plan:
    expire_stale(service)
    record = service.store.get_build(build_id)
    plan = service.store.get_plan(build_id)
    if record.approval is not Approval.REQUIRED or plan is None:
        state = record.approval.value if record.approval else record.status.value
        raise ApprovalError(f"build {build_id} is not waiting for approval (it is {state})")
    return plan


def approve(service: BuildService, build_id: str) -> Plan:
    plan = _plan_awaiting(service, build_id)
    if not service.store.decide(build_id, Approval.APPROVED):
        raise ApprovalError(f"build {build_id} was decided by someone else meanwhile")
    return plan


def reject(service: BuildService, build_id: str, reason: str) -> None:
    _plan_awaiting(service, build_id)
    message = f"plan rejected: {reason}"
    if not service.store.decide(build_id, Approval.REJECTED, error=message):
        raise ApprovalError(f"build {build_id} was decided by someone else meanwhile")
    service.budgets.release(build_id)
    service.events.emit(build_id, BuildFailed(reason=message))


def expire_stale(service: BuildService, now: datetime | None = None) -> list[str]:
    """End every build that has waited longer than SHEEN_PLAN_APPROVAL_TTL_S."""
    ttl = service.settings.plan_approval_ttl_s
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=ttl)
    expired = []
    for build_id in service.store.awaiting_approval_since(cutoff):
        message = f"plan approval expired after {ttl}s"
        if service.store.decide(build_id, Approval.EXPIRED, error=message):
            service.budgets.release(build_id)
            service.events.emit(build_id, BuildFailed(reason=message))
            expired.append(build_id)
    return expired


def check_may_run(service: BuildService, build_id: str) -> None:
    """Called when a run of the build starts: launching a waiting build (for example from the
    UI) approves it; a rejected or expired one may not run."""
    record = service.store.get_build(build_id)
    if record.approval is Approval.REQUIRED and record.status is BuildStatus.AWAITING_APPROVAL:
        expire_stale(service)
        service.store.decide(build_id, Approval.APPROVED)
        record = service.store.get_build(build_id)
    if record.approval in (Approval.REJECTED, Approval.EXPIRED):
        raise ApprovalError(f"build {build_id} may not run: {record.error}")
