"""Build requests handed over by the main app (rows it inserts, HTTP ingress, `sheen submit`).
Each row gets its build id up front, so callers can follow the build before it is planned."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.models import BuildRequest
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.tables import build_requests

PENDING = "pending"
FAILED = "failed"


@dataclass(frozen=True)
class RequestRecord:
    seq: int
    request_id: str
    build_id: str
    user_id: str
    project_id: str
    prompt: str
    framework: str | None
    base_build_id: str | None
    idempotency_key: str | None
    status: str
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def fields(self) -> dict[str, object]:
        """The request's fields as given, unvalidated: the main app may have inserted anything."""
        return {name: getattr(self, name) for name in BuildRequest.model_fields}


def new_request_id() -> str:
    return "r" + secrets.token_hex(8)


def _record(row: object) -> RequestRecord:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    for key in ("created_at", "updated_at"):
        if values[key].tzinfo is None:
            values[key] = values[key].replace(tzinfo=UTC)
    return RequestRecord(**values)


class RequestStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def add(
        self,
        request: BuildRequest,
        request_id: str,
        build_id: str,
        idempotency_key: str | None = None,
    ) -> RequestRecord:
        """Queue the request; with an idempotency key already used, the request first queued
        with it is returned instead and nothing is added."""
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(build_requests).values(
                        request_id=request_id,
                        build_id=build_id,
                        **request.model_dump(),
                        idempotency_key=idempotency_key,
                        status=PENDING,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            first = self.with_idempotency_key(idempotency_key) if idempotency_key else None
            if first is None:
                raise
            return first
        found = self.find(request_id)
        assert found is not None
        return found

    def with_idempotency_key(self, key: str) -> RequestRecord | None:
        query = select(build_requests).where(build_requests.c.idempotency_key == key)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def fail(self, request_id: str, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(build_requests)
                .where(build_requests.c.request_id == request_id)
                .values(status=FAILED, error=error, updated_at=datetime.now(UTC))
            )

    def record_base(self, request_id: str, base_build_id: str) -> None:
        """The base the request named ('latest', 'production'), as the build id it resolved to."""
        with self.engine.begin() as conn:
            conn.execute(
                update(build_requests)
                .where(build_requests.c.request_id == request_id)
                .values(base_build_id=base_build_id)
            )

    def replace_prompt(self, request_id: str, prompt: str) -> None:
        """Keep the prompt as validated (a key the main app let through, redacted)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(build_requests)
                .where(build_requests.c.request_id == request_id)
                .values(prompt=prompt)
            )

    def find(self, request_or_build_id: str) -> RequestRecord | None:
        query = select(build_requests).where(
            or_(
                build_requests.c.request_id == request_or_build_id,
                build_requests.c.build_id == request_or_build_id,
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def pending_after(self, cursor: int, limit: int) -> list[RequestRecord]:
        """Pending rows past the cursor, oldest first."""
        query = (
            select(build_requests)
            .where(build_requests.c.seq > cursor, build_requests.c.status == PENDING)
            .order_by(build_requests.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def pending_before(self, cursor: int, older_than: datetime, limit: int) -> list[RequestRecord]:
        """Rows the cursor passed that are still pending: a row whose transaction committed
        after a later one was read, or one whose run has not started."""
        query = (
            select(build_requests)
            .where(
                build_requests.c.seq <= cursor,
                build_requests.c.status == PENDING,
                build_requests.c.created_at < older_than,
            )
            .order_by(build_requests.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def recent(self, limit: int) -> list[RequestRecord]:
        query = select(build_requests).order_by(build_requests.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]
