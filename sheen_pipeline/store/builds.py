"""Builds and their plans. A stored plan never changes: its Dagster job is built from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, insert, select, update
from sqlalchemy.engine import make_url

from sheen_pipeline.models import BuildRequest, Plan, TokenUsage
from sheen_pipeline.store.tables import builds, metadata, plans


class BuildStatus(StrEnum):
    PLANNING = "planning"
    PLANNED = "planned"
    BLOCKED = "blocked"
    BUILDING = "building"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


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
    created_at: datetime


@cache
def engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine


def _now() -> datetime:
    return datetime.now(UTC)


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
                    status=BuildStatus.PLANNING.value,
                    created_at=now,
                    updated_at=now,
                )
            )

    def save_plan(self, plan: Plan) -> None:
        """Store a plan once; a second save of the same build fails rather than change a job."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(plans).values(
                    build_id=plan.build_id, plan_json=plan.model_dump_json(), created_at=_now()
                )
            )
            self._set_status(conn, plan.build_id, BuildStatus.PLANNED)

    def set_status(
        self,
        build_id: str,
        status: BuildStatus,
        *,
        preview_url: str | None = None,
        error: str | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            self._set_status(
                conn, build_id, status, preview_url=preview_url, error=error, usage=usage
            )

    @staticmethod
    def _set_status(
        conn: Connection,
        build_id: str,
        status: BuildStatus,
        *,
        preview_url: str | None = None,
        error: str | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status.value, "updated_at": _now(), "error": error}
        if preview_url is not None:
            values["preview_url"] = preview_url
        if usage is not None:
            values["usage_json"] = usage.model_dump_json()
        result = conn.execute(update(builds).where(builds.c.build_id == build_id).values(**values))
        if result.rowcount == 0:
            raise UnknownBuild(f"no build {build_id!r}")

    def start_run(self, build_id: str, run_id: str) -> BuildStatus | None:
        """Mark the build as building when a new run of it starts, returning the status it had;
        None for later steps of the same run, which leave a failure they recorded alone."""
        with self.engine.begin() as conn:
            previous = conn.execute(
                select(builds.c.status).where(builds.c.build_id == build_id)
            ).scalar_one()
            result = conn.execute(
                update(builds)
                .where(builds.c.build_id == build_id)
                .where((builds.c.current_run_id.is_(None)) | (builds.c.current_run_id != run_id))
                .values(
                    status=BuildStatus.BUILDING.value,
                    current_run_id=run_id,
                    error=None,
                    updated_at=_now(),
                )
            )
        return BuildStatus(previous) if result.rowcount == 1 else None

    def mark_failed(self, build_id: str, error: str) -> bool:
        """True when this call moved the build to failed (so it is reported once)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(builds)
                .where(builds.c.build_id == build_id, builds.c.status != BuildStatus.FAILED.value)
                .values(status=BuildStatus.FAILED.value, error=error, updated_at=_now())
            )
        return result.rowcount == 1

    def get_build(self, build_id: str) -> BuildRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(builds).where(builds.c.build_id == build_id)).first()
        if row is None:
            raise UnknownBuild(f"no build {build_id!r}")
        return BuildRecord(
            build_id=row.build_id,
            request=BuildRequest.model_validate_json(row.request_json),
            status=BuildStatus(row.status),
            preview_url=row.preview_url,
            error=row.error,
            usage=TokenUsage.model_validate_json(row.usage_json)
            if row.usage_json
            else TokenUsage(),
            created_at=row.created_at,
        )

    def get_plan(self, build_id: str) -> Plan | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(plans.c.plan_json).where(plans.c.build_id == build_id)
            ).scalar_one_or_none()
        return None if raw is None else Plan.model_validate_json(raw)

    def list_plans(self) -> list[Plan]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(plans.c.plan_json).order_by(plans.c.created_at)).scalars()
            return [Plan.model_validate_json(raw) for raw in rows]
