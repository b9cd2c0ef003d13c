"""The webhook outbox and the receiver's shared health: which delivery may go next, and what an
attempt's answer does to it. Every process that delivers agrees through these rows alone."""

from __future__ import annotations

import hashlib
import random
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.config import WebhookSettings
from sheen_pipeline.store.tables import webhook_deliveries as deliveries
from sheen_pipeline.store.tables import webhook_endpoints as endpoints

LEASE_EXPIRY_SLACK_S = 0.05
DELIVERER_ALIVE_S = 30.0  # a long-running deliverer marks itself seen at least this often


@dataclass(frozen=True)
class Claim:
    """A delivery this process may attempt now. A probe is an extra try of a waiting event
    while the receiver fails: its failure costs the event no attempt of its schedule."""

    seq: int
    probe: bool = False


@dataclass(frozen=True)
class Outcome:
    """What the receiver answered: error is None on 2xx; gone is a 410 (disable the endpoint)."""

    error: str | None
    gone: bool = False


@dataclass(frozen=True)
class EndpointHealth:
    disabled_at: float | None
    disabled_reason: str | None
    failing_since: float | None
    last_attempt_at: float
    last_success_at: float | None
    deliverer_seen_at: float


class Outbox:
    def __init__(self, engine: Engine, config: WebhookSettings) -> None:
        self.engine = engine
        self.config = config
        self.endpoint_key = hashlib.sha256(config.url.encode()).hexdigest()
        self._mine = endpoints.c.url_hash == self.endpoint_key
        self._endpoint_exists = False

    def _begin(self) -> AbstractContextManager[Connection]:
        """A transaction, with the endpoint's row made first if this process has not yet."""
        if not self._endpoint_exists:
            try:
                with self.engine.begin() as conn:
                    if conn.execute(select(endpoints.c.url_hash).where(self._mine)).first() is None:
                        conn.execute(insert(endpoints).values(url_hash=self.endpoint_key))
            except IntegrityError:
                pass  # another process added it first
            self._endpoint_exists = True
        return self.engine.begin()

    # -- the receiver's health ------------------------------------------------------------

    def health(self) -> EndpointHealth:
        with self._begin() as conn:
            return self._health(conn)

    def _health(self, conn: Connection) -> EndpointHealth:
        row = conn.execute(select(endpoints).where(self._mine)).one()
        return EndpointHealth(
            disabled_at=row.disabled_at,
            disabled_reason=row.disabled_reason,
            failing_since=row.failing_since,
            last_attempt_at=row.last_attempt_at or 0.0,
            last_success_at=row.last_success_at,
            deliverer_seen_at=row.deliverer_seen_at or 0.0,
        )

    def _set_endpoint(self, conn: Connection, **values: Any) -> None:
        conn.execute(update(endpoints).where(self._mine).values(**values))

    def mark_deliverer_alive(self) -> None:
        """Called by long-running deliverers (`sheen serve`, the daemon's sensor, a hand-over
        process), so short-lived processes know someone will send what they leave."""
        with self._begin() as conn:
            self._set_endpoint(conn, deliverer_seen_at=time.time())

    def mark_deliverer_gone(self) -> None:
        """Called by a hand-over deliverer that found nothing left: the next events are handed
        to a new one at once instead of waiting out DELIVERER_ALIVE_S."""
        with self._begin() as conn:
            self._set_endpoint(conn, deliverer_seen_at=0.0)

    def deliverer_alive(self) -> bool:
        return time.time() - self.health().deliverer_seen_at < DELIVERER_ALIVE_S

    def enable(self) -> None:
        """Undo a 410: the endpoint takes deliveries again, and everything waiting goes now."""
        now = time.time()
        with self._begin() as conn:
            self._set_endpoint(conn, disabled_at=None, disabled_reason=None, failing_since=None)
            self._send_waiting_now(conn, now)

    # -- claiming ---------------------------------------------------------------------------

    def _heads(self, conn: Connection) -> list[Any]:
        """The oldest pending delivery of each build: only it may be sent, so order holds."""
        first = (
            select(func.min(deliveries.c.event_seq))
            .where(deliveries.c.status == "pending")
            .group_by(deliveries.c.build_id)
        )
        query = (
            select(deliveries.c.event_seq, deliveries.c.next_attempt_at, deliveries.c.leased_until)
            .where(deliveries.c.event_seq.in_(first))
            .order_by(deliveries.c.event_seq)
        )
        return list(conn.execute(query).all())

    def claim(self) -> list[Claim]:
        """Lease every head that is due; when none is due but the receiver is failing and
        has not been tried for probe_s, lease the head that waits longest as a probe."""
        now = time.time()
        with self._begin() as conn:
            health = self._health(conn)
            if health.disabled_at is not None:
                return []
            free = [head for head in self._heads(conn) if head.leased_until < now]
            claims = [Claim(head.event_seq) for head in free if head.next_attempt_at <= now]
            if not claims and free and self._take_probe(conn, health, now):
                waiting = min(free, key=lambda head: (head.next_attempt_at, head.event_seq))
                claims = [Claim(waiting.event_seq, probe=True)]
            return [claim for claim in claims if self._lease(conn, claim.seq, now)]

    def _take_probe(self, conn: Connection, health: EndpointHealth, now: float) -> bool:
        if health.failing_since is None or now < health.last_attempt_at + self.config.probe_s:
            return False
        taken = conn.execute(  # one probe at a time, across processes
            update(endpoints)
            .where(self._mine, endpoints.c.last_attempt_at == health.last_attempt_at)
            .values(last_attempt_at=now)
        )
        return taken.rowcount == 1

    def _lease(self, conn: Connection, seq: int, now: float) -> bool:
        leased = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.event_seq == seq,
                deliveries.c.status == "pending",
                deliveries.c.leased_until < now,
            )
            .values(leased_until=now + self.config.lease_s)
        )
        return leased.rowcount == 1

    def renew(self, seq: int) -> None:
        """Keep the lease while the attempt is still in flight."""
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.event_seq == seq)
                .values(leased_until=time.time() + self.config.lease_s)
            )

    def release(self, seq: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries).where(deliveries.c.event_seq == seq).values(leased_until=0.0)
            )

    # -- recording an answer -------------------------------------------------------------------

    def record(self, claim: Claim, outcome: Outcome) -> str:
        """Store what the attempt did; returns the delivery's state afterwards."""
        now = time.time()
        with self._begin() as conn:
            health = self._health(conn)
            attempts = conn.execute(
                select(deliveries.c.attempts).where(deliveries.c.event_seq == claim.seq)
            ).scalar_one()
            counted = attempts if claim.probe and outcome.error is not None else attempts + 1
            values: dict[str, Any] = {
                "attempts": counted,
                "leased_until": 0.0,
                "last_error": outcome.error,
            }
            endpoint: dict[str, Any] = {"last_attempt_at": now}
            state = "pending"
            if outcome.error is None:
                state = "delivered"
                values |= {"status": state, "delivered_at": now}
                endpoint |= {"failing_since": None, "last_success_at": now}
                if health.failing_since is not None:
                    self._send_waiting_now(conn, now)  # the receiver is back: catch up at once
            elif outcome.gone:
                endpoint |= {"disabled_at": now, "disabled_reason": outcome.error}
            else:
                endpoint |= {"failing_since": health.failing_since or now}
                if counted >= len(self.config.schedule_s):
                    state = "dead"
                    values |= {"status": state}
                elif not claim.probe:
                    jitter = 0.9 + random.random() / 5
                    values |= {"next_attempt_at": now + self.config.schedule_s[counted] * jitter}
            conn.execute(
                update(deliveries).where(deliveries.c.event_seq == claim.seq).values(**values)
            )
            self._set_endpoint(conn, **endpoint)
        return state

    def _send_waiting_now(self, conn: Connection, now: float) -> None:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at > now)
            .values(next_attempt_at=now)
        )

    # -- waiting and reporting -----------------------------------------------------------------

    def next_wake_in(self) -> float | None:
        """Seconds until a delivery may become claimable (a head falls due, a lease expires,
        a probe is allowed); None when nothing can be sent (nothing pending, or disabled)."""
        now = time.time()
        with self._begin() as conn:
            health = self._health(conn)
            heads = self._heads(conn)
        if health.disabled_at is not None or not heads:
            return None
        times: list[float] = [
            max(head.next_attempt_at, head.leased_until + LEASE_EXPIRY_SLACK_S) for head in heads
        ]
        if health.failing_since is not None:
            times.append(health.last_attempt_at + self.config.probe_s)
        return max(0.0, min(times) - now)

    def redeliver(self, build_id: str | None = None) -> int:
        """Dead deliveries become pending again with a fresh schedule; they go out in their
        original order, ahead of their build's later events."""
        statement = update(deliveries).where(deliveries.c.status == "dead")
        if build_id is not None:
            statement = statement.where(deliveries.c.build_id == build_id)
        with self.engine.begin() as conn:
            result = conn.execute(
                statement.values(
                    status="pending", attempts=0, next_attempt_at=time.time(), leased_until=0.0
                )
            )
        return result.rowcount

    def counts(self, build_id: str | None = None) -> dict[str, int]:
        query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if build_id is not None:
            query = query.where(deliveries.c.build_id == build_id)
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(query).all()}
