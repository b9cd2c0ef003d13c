"""A project's builds as versions: each build may change an earlier one (its base)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from sheen_pipeline.models import BuildRequest, TokenUsage
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.tables import builds


@dataclass(frozen=True)
class VersionRow:
    build_id: str
    project_id: str
    base_build_id: str | None
    status: BuildStatus
    prompt: str
    preview_url: str | None
    usage: TokenUsage
    created_at: datetime


class VersionStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def of_project(self, project_id: str, limit: int = 500) -> list[VersionRow]:
        """The project's newest `limit` builds, oldest first."""
        query = (
            select(builds)
            .where(builds.c.project_id == project_id)
            .order_by(builds.c.created_at.desc(), builds.c.build_id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [_version(row) for row in reversed(rows)]

    def latest_succeeded(self, project_id: str) -> str | None:
        """The project's newest succeeded build: what `latest` means as a base."""
        query = (
            select(builds.c.build_id)
            .where(
                builds.c.project_id == project_id,
                builds.c.status == BuildStatus.SUCCEEDED.value,
            )
            .order_by(builds.c.created_at.desc(), builds.c.build_id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()


def _version(row: object) -> VersionRow:
    values = row._mapping  # type: ignore[attr-defined]
    created = values["created_at"]
    return VersionRow(
        build_id=values["build_id"],
        project_id=values["project_id"],
        base_build_id=values["base_build_id"],
        status=BuildStatus(values["status"]),
        prompt=BuildRequest.model_validate_json(values["request_json"]).prompt,
        preview_url=values["preview_url"],
        usage=TokenUsage.model_validate_json(values["usage_json"])
        if values["usage_json"]
        else TokenUsage(),
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
    )
