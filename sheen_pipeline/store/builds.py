"""Builds and their plans. A stored plan never changes: its Dagster job is built from it.
A build's status is mirrored onto the request it came from, so `sheen status` shows one story."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from sheen_pipeline.models import BuildRequest, Plan, TokenUsage
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.spent import ledger_usage
from sheen_pipeline.store.tables import build_requests, builds, plans


class BuildStatus(StrEnum):
    PLANNING = "planning"
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    BLOCKED = "blocked"
    BUILDING = "building"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# A build in these states with a heartbeat has a process working on it (a planned one is being
# handed to its build run); one that ended its run cleared its heartbeat.
RUNNING_STATUSES = (
    BuildStatus.PLANNING.value,
    BuildStatus.PLANNED.value,
    BuildStatus.BUILDING.value,
)


class Approval(StrEnum):
    REQUIRED = "required"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class UnknownBuild(LookupError):
    pass


@dataclass(frozen=True)
class BuildRecord:
    build_id: str
    request: BuildRequest
    status: BuildStatus
    preview_url: str | None
    error: str | None
    usage: TokenUsage
    approval: Approval | None
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class BuildStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def create_build(self, build_id: str, request: BuildRequest) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                insert(builds).values(
                    build_id=build_id,
                    project_id=request.project_id,
                    user_id=request.user_id,
                    request_json=request.model_dump_json(),
                    base_build_id=request.base_build_id,
                    status=BuildStatus.PLANNING.value,
                    created_at=now,
                    updated_at=now,
                )
            )
            _mirror(conn, build_id, BuildStatus.PLANNING, None)

    def save_plan(self, plan: Plan) -> None:
        """Store a plan once; a second save of the same build fails rather than change a job."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(plans).values(
                    build_id=plan.build_id, plan_json=plan.model_dump_json(), created_at=_now()
                )
            )
            _write(conn, plan.build_id, BuildStatus.PLANNED)

    def set_status(
        self,
        build_id: str,
        status: BuildStatus,
        *,
        preview_url: str | None = None,
        error: str | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if preview_url is not None:
            values["preview_url"] = preview_url
        if usage is not None:
            values["usage_json"] = usage.model_dump_json()
        with self.engine.begin() as conn:
            _write(conn, build_id, status, error=error, **values)

    def add_usage(self, build_id: str, usage: TokenUsage) -> TokenUsage:
        """Add what calls made for the build cost (every paid call, whatever its outcome) to its
        total; returns the new total."""
        query = select(builds.c.usage_json).where(builds.c.build_id == build_id).with_for_update()
        with self.engine.begin() as conn:
            raw = conn.execute(query).scalar_one_or_none()
            total = (TokenUsage.model_validate_json(raw) if raw else TokenUsage()) + usage
            conn.execute(
                update(builds)
                .where(builds.c.build_id == build_id)
                .values(usage_json=total.model_dump_json())
            )
        return total

    def start_run(self, build_id: str, run_id: str) -> BuildStatus | None:
        """Mark the build as building when a new run of it starts, returning the status it had;
        None for later steps of the same run, which leave a failure they recorded alone."""
        with self.engine.begin() as conn:
            previous = conn.execute(
                select(builds.c.status).where(builds.c.build_id == build_id)
            ).scalar_one()
            changed = _write(
                conn,
                build_id,
                BuildStatus.BUILDING,
                (builds.c.current_run_id.is_(None)) | (builds.c.current_run_id != run_id),
                error=None,
                current_run_id=run_id,
                run_started_at=_now(),
            )
        return BuildStatus(previous) if changed else None

    def mark_failed(
        self,
        build_id: str,
        error: str,
        stalled_before: float | None = None,
        run_id: str | None = None,
    ) -> bool:
        """True when this call moved the build to failed (so it is reported once). With
        stalled_before, only while it is still running with no heartbeat since then. With
        run_id, only while that run is the build's latest (or none has started): a late word
        of an old run's failure must not undo the re-execution that succeeded after it."""
        conditions = [builds.c.status != BuildStatus.FAILED.value]
        if run_id is not None:
            latest = builds.c.current_run_id
            conditions.append(latest.is_(None) | (latest == run_id))
        if stalled_before is not None:
            conditions += [
                builds.c.status.in_(RUNNING_STATUSES),
                builds.c.heartbeat_at < stalled_before,
            ]
        with self.engine.begin() as conn:
            return _write(conn, build_id, BuildStatus.FAILED, *conditions, error=error)

    def beat(self, build_id: str, at: float | None) -> None:
        """Record that a process is running the build (at=None: none is, any more)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(builds).where(builds.c.build_id == build_id).values(heartbeat_at=at)
            )

    def stalled(self, cutoff: float) -> list[tuple[str, str | None, float]]:
        """Running builds (RUNNING_STATUSES) whose process last beat before cutoff:
        (build id, current run id, last beat)."""
        query = select(builds.c.build_id, builds.c.current_run_id, builds.c.heartbeat_at).where(
            builds.c.status.in_(RUNNING_STATUSES), builds.c.heartbeat_at < cutoff
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1], row[2]) for row in conn.execute(query)]

    def await_approval(self, build_id: str) -> None:
        with self.engine.begin() as conn:
            _write(conn, build_id, BuildStatus.AWAITING_APPROVAL, approval=Approval.REQUIRED.value)

    def decide(self, build_id: str, decision: Approval, error: str | None = None) -> bool:
        """Settle a pending approval; False when it was already settled (approved, rejected,
        expired) so two deciders never both win."""
        status = BuildStatus.PLANNED if decision is Approval.APPROVED else BuildStatus.FAILED
        with self.engine.begin() as conn:
            return _write(
                conn,
                build_id,
                status,
                builds.c.approval == Approval.REQUIRED.value,
                error=error,
                approval=decision.value,
            )

    def awaiting_approval_since(self, cutoff: datetime) -> list[str]:
        """Builds that entered awaiting_approval before cutoff."""
        query = select(builds.c.build_id).where(
            builds.c.status == BuildStatus.AWAITING_APPROVAL.value,
            builds.c.updated_at < cutoff,
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def get_build(self, build_id: str) -> BuildRecord:
        """The build; its usage is the ledger's sum when its calls were metered."""
        with self.engine.connect() as conn:
            row = conn.execute(select(builds).where(builds.c.build_id == build_id)).first()
            metered = ledger_usage(conn, build_id)
        if row is None:
            raise UnknownBuild(f"no build {build_id!r}")
        counted = TokenUsage.model_validate_json(row.usage_json) if row.usage_json else TokenUsage()
        return BuildRecord(
            build_id=row.build_id,
            request=BuildRequest.model_validate_json(row.request_json),
            status=BuildStatus(row.status),
            preview_url=row.preview_url,
            error=row.error,
            usage=metered or counted,
            approval=Approval(row.approval) if row.approval else None,
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            run_started_at=_aware(row.run_started_at) if row.run_started_at else None,
        )

    def get_plan(self, build_id: str) -> Plan | None:
        raw = self.get_plan_json(build_id)
        return None if raw is None else Plan.model_validate_json(raw)

    def get_plan_json(self, build_id: str) -> str | None:
        query = select(plans.c.plan_json).where(plans.c.build_id == build_id)
        with self.engine.connect() as conn:
            raw: str | None = conn.execute(query).scalar_one_or_none()
        return raw

    def plan_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(plans)).scalar_one())

    def statuses(self, build_ids: AbstractSet[str]) -> dict[str, BuildStatus]:
        query = select(builds.c.build_id, builds.c.status).where(builds.c.build_id.in_(build_ids))
        with self.engine.connect() as conn:
            return {build_id: BuildStatus(status) for build_id, status in conn.execute(query)}

    def recent_costs(self, project_id: str, before: str, limit: int) -> list[Decimal]:
        """What the project's latest ended builds other than `before` cost, those that did
        paid work only (priced, over $0), newest first."""
        ended = (BuildStatus.SUCCEEDED.value, BuildStatus.FAILED.value)
        query = (
            select(builds.c.usage_json)
            .where(
                builds.c.project_id == project_id,
                builds.c.status.in_(ended),
                builds.c.build_id != before,
                builds.c.usage_json.is_not(None),
            )
            .order_by(builds.c.updated_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            usages = [TokenUsage.model_validate_json(raw) for raw in conn.execute(query).scalars()]
        return [u.cost_usd for u in usages if u.cost_usd is not None and u.cost_usd > 0]

    def finished_between(self, since: datetime, until: datetime) -> dict[BuildStatus, int]:
        """How many builds ended (succeeded or failed) in [since, until), by status."""
        ended = (BuildStatus.SUCCEEDED.value, BuildStatus.FAILED.value)
        query = (
            select(builds.c.status, func.count())
            .where(
                builds.c.status.in_(ended),
                builds.c.updated_at >= since,
                builds.c.updated_at < until,
            )
            .group_by(builds.c.status)
        )
        with self.engine.connect() as conn:
            return {BuildStatus(status): int(n) for status, n in conn.execute(query)}

    def recent_plans(self, limit: int) -> list[tuple[str, str]]:
        """(build id, plan JSON) of the newest `limit` plans, newest first; unparsed, so that a
        caller can set aside one it cannot read and go on with the rest."""
        query = (
            select(plans.c.build_id, plans.c.plan_json)
            .order_by(plans.c.created_at.desc(), plans.c.build_id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.build_id, row.plan_json) for row in conn.execute(query)]


def _write(
    conn: Connection, build_id: str, status: BuildStatus, *conditions: Any, **values: Any
) -> bool:
    """Set the build's status (and values) when conditions hold, mirroring it to its request.
    Raises UnknownBuild for a build that does not exist; returns whether anything changed."""
    statement = (
        update(builds)
        .where(builds.c.build_id == build_id, *conditions)
        .values(status=status.value, updated_at=_now(), **values)
    )
    if conn.execute(statement).rowcount == 0:
        if (
            conn.execute(select(builds.c.build_id).where(builds.c.build_id == build_id)).first()
            is None
        ):
            raise UnknownBuild(f"no build {build_id!r}")
        return False
    _mirror(conn, build_id, status, values.get("error"))
    return True


_REQUEST_STATUS = {BuildStatus.PLANNED: BuildStatus.PLANNING}  # blocked stays blocked everywhere


def _mirror(conn: Connection, build_id: str, status: BuildStatus, error: str | None) -> None:
    request_status = _REQUEST_STATUS.get(status, status)
    conn.execute(
        update(build_requests)
        .where(build_requests.c.build_id == build_id)
        .values(status=request_status.value, error=error, updated_at=_now())
    )
