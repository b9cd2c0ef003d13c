"""The build event log: every event is stored (with its webhook outbox row, in the same
transaction) before anyone is told about it, so nothing is lost if a process dies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from sheen_pipeline.events.payloads import EventPayload
from sheen_pipeline.events.types import BuildEvent, EventType
from sheen_pipeline.redaction import redact
from sheen_pipeline.store.tables import build_events, webhook_deliveries

Listener = Callable[[BuildEvent], None]


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secrets) for v in value]
    return value


def _event(row: Any) -> BuildEvent:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return BuildEvent(
        seq=row.seq,
        id=row.event_id,
        build_id=row.build_id,
        type=EventType(row.type),
        timestamp=created,
        data=json.loads(row.data_json),
    )


class EventLog:
    def __init__(
        self,
        engine: Engine,
        *,
        webhooks_enabled: bool,
        secrets: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.webhooks_enabled = webhooks_enabled
        self.secrets = tuple(secrets)
        self.listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call listener with each event this process emits, after it is stored; returns a
        function that removes it."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def emit(self, build_id: str, payload: EventPayload) -> BuildEvent:
        """Store the event (secrets redacted) and, with webhooks, its delivery, in one
        transaction; then tell this process's listeners."""
        event_type = payload.type
        event_id, created_at = uuid.uuid4().hex, datetime.now(UTC)
        data_json = json.dumps(_redacted(payload.data(), self.secrets))
        row = {
            "event_id": event_id,
            "build_id": build_id,
            "type": event_type.value,
            "created_at": created_at,
            "data_json": data_json,
        }
        with self.engine.begin() as conn:
            key = conn.execute(insert(build_events).values(**row)).inserted_primary_key
            assert key is not None
            seq: int = key[0]
            if self.webhooks_enabled:
                now = time.time()
                conn.execute(
                    insert(webhook_deliveries).values(
                        event_seq=seq,
                        build_id=build_id,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        leased_until=0.0,
                        queued_at=now,
                    )
                )
        event = BuildEvent(
            seq=seq,
            id=event_id,
            build_id=build_id,
            type=event_type,
            timestamp=created_at,
            data=json.loads(data_json),
        )
        for listener in list(self.listeners):
            listener(event)
        return event

    def after(self, build_id: str, cursor: int = 0, limit: int = 500) -> list[BuildEvent]:
        """Events of a build with seq greater than cursor, oldest first."""
        query = (
            select(build_events)
            .where(build_events.c.build_id == build_id, build_events.c.seq > cursor)
            .order_by(build_events.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_event(row) for row in conn.execute(query)]

    def last(self, build_id: str) -> BuildEvent | None:
        """The build's newest event, if any."""
        query = (
            select(build_events)
            .where(build_events.c.build_id == build_id)
            .order_by(build_events.c.seq.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _event(row)

    def get(self, seq: int) -> BuildEvent:
        with self.engine.connect() as conn:
            row = conn.execute(select(build_events).where(build_events.c.seq == seq)).one()
        return _event(row)
