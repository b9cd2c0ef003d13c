"""Build requests handed over by the main app (HTTP ingress, `sheen submit`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from sheen_pipeline.models import BuildRequest
from sheen_pipeline.store.builds import engine_for
from sheen_pipeline.store.tables import build_requests


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    build_id: str
    request: BuildRequest
    status: str
    error: str | None
    created_at: datetime


def new_request_id() -> str:
    return "r" + secrets.token_hex(8)


class RequestStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def add(self, request_id: str, build_id: str, request: BuildRequest) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                insert(build_requests).values(
                    request_id=request_id,
                    build_id=build_id,
                    user_id=request.user_id,
                    project_id=request.project_id,
                    prompt=request.prompt,
                    framework=request.framework,
                    status="pending",
                    created_at=now,
                    updated_at=now,
                )
            )

    def set_status(self, request_id: str, status: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(build_requests)
                .where(build_requests.c.request_id == request_id)
                .values(status=status, error=error, updated_at=datetime.now(UTC))
            )

    def by_build(self, build_id: str) -> RequestRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(build_requests).where(build_requests.c.build_id == build_id)
            ).first()
        if row is None:
            return None
        return RequestRecord(
            request_id=row.request_id,
            build_id=row.build_id,
            request=BuildRequest(
                prompt=row.prompt,
                project_id=row.project_id,
                user_id=row.user_id,
                framework=row.framework,
            ),
            status=row.status,
            error=row.error,
            created_at=row.created_at,
        )
