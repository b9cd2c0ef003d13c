"""The webhook outbox and the receiver's shared health: which deliveries may go now, and what an
attempt's answer does to one. Every process that delivers agrees through these rows alone. Each
event is delivered on its own (receivers order by `seq`); only the endpoint's room bounds them."""

from __future__ import annotations

import hashlib
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.config import WebhookSettings
from sheen_pipeline.events.retry_schedule import after_failure
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


def _leased(now: float) -> tuple[ColumnElement[bool], ...]:
    """Deliveries in flight: pending, and leased by a process until after now."""
    return deliveries.c.status == "pending", deliveries.c.leased_until >= now


def _free(now: float) -> tuple[ColumnElement[bool], ...]:
    """Deliveries no process holds: pending, and their lease (if any) over."""
    return deliveries.c.status == "pending", deliveries.c.leased_until < now


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

    def claim_hand_over(self) -> bool:
        """True for the one caller that may start a hand-over deliverer: none was seen alive,
        and this caller marked one as seen, atomically, so concurrent commands start one."""
        now = time.time()
        with self._begin() as conn:
            taken = conn.execute(
                update(endpoints)
                .where(self._mine, endpoints.c.deliverer_seen_at < now - DELIVERER_ALIVE_S)
                .values(deliverer_seen_at=now)
            )
        return taken.rowcount == 1

    def enable(self) -> None:
        """Undo a 410: the endpoint takes deliveries again, and everything waiting goes now."""
        now = time.time()
        with self._begin() as conn:
            self._set_endpoint(conn, disabled_at=None, disabled_reason=None, failing_since=None)
            self._send_waiting_now(conn, now)

    # -- claiming ---------------------------------------------------------------------------

    def claim(self) -> list[Claim]:
        """Lease the due deliveries, oldest first, each on its own (a failing event holds no
        other back), as many as the endpoint has room for (max_in_flight across processes);
        when none is due but the receiver is failing and has not been tried for probe_s, lease
        the delivery that waits longest as a probe. Claims of one endpoint take turns to count
        and lease; one that finds nothing it could lease (most of them) neither waits nor
        writes."""
        now = time.time()
        with self._begin() as conn:
            if not self._anything_to_lease(conn, now):
                return []
            self._take_turn(conn)
            health = self._health(conn)
            in_flight = conn.execute(select(func.count()).where(*_leased(now))).scalar_one()
            room = self.config.max_in_flight - in_flight
            if health.disabled_at is not None or room <= 0:
                return []
            free = _free(now)
            due = conn.execute(
                select(deliveries.c.event_seq)
                .where(*free, deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.event_seq)
                .limit(room)
            ).scalars()
            claims = [Claim(seq) for seq in due]
            if not claims and self._take_probe(conn, health, now):
                waiting = conn.execute(
                    select(deliveries.c.event_seq)
                    .where(*free)
                    .order_by(deliveries.c.next_attempt_at, deliveries.c.event_seq)
                    .limit(1)
                ).scalar()
                claims = [] if waiting is None else [Claim(waiting, probe=True)]
            return [claim for claim in claims if self._lease(conn, claim.seq, now)]

    def _anything_to_lease(self, conn: Connection, now: float) -> bool:
        """Whether the endpoint has room and a delivery is free to lease now (due, or a probe is
        due); read only (a claim's count of what is in flight is made in its turn)."""
        health = self._health(conn)
        if health.disabled_at is not None:
            return False
        room = self.config.max_in_flight
        leased = select(deliveries.c.event_seq).where(*_leased(now)).limit(room)
        if len(conn.execute(leased).all()) >= room:
            return False
        free = list(_free(now))
        if not self._probe_due(health, now):
            free.append(deliveries.c.next_attempt_at <= now)
        return (
            conn.execute(select(deliveries.c.event_seq).where(*free).limit(1)).first() is not None
        )

    def _take_turn(self, conn: Connection) -> None:
        """Claims of one endpoint take turns until their transaction ends, so that what one
        counts in flight is still true when it leases: a write to the endpoint's row locks it
        (on Postgres the row, on SQLite the database)."""
        conn.execute(update(endpoints).where(self._mine).values(url_hash=endpoints.c.url_hash))

    def _probe_due(self, health: EndpointHealth, now: float) -> bool:
        return (
            health.failing_since is not None and now >= health.last_attempt_at + self.config.probe_s
        )

    def _take_probe(self, conn: Connection, health: EndpointHealth, now: float) -> bool:
        if not self._probe_due(health, now):
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
            .where(deliveries.c.event_seq == seq, *_free(now))
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
            attempts, quick = conn.execute(
                select(deliveries.c.attempts, deliveries.c.quick_retries).where(
                    deliveries.c.event_seq == claim.seq
                )
            ).one()
            values: dict[str, Any] = {"leased_until": 0.0, "last_error": outcome.error}
            endpoint: dict[str, Any] = {"last_attempt_at": now}
            state = "pending"
            if outcome.error is None:
                state = "delivered"
                values |= {"status": state, "delivered_at": now, "attempts": attempts + 1}
                endpoint |= {"last_success_at": now}
            elif outcome.gone:
                values |= {"attempts": attempts + 1}
                endpoint |= {"disabled_at": now, "disabled_reason": outcome.error}
            else:  # decided by the row as it is when written: attempts in flight race
                endpoint |= {"failing_since": func.coalesce(endpoints.c.failing_since, now)}
                if not claim.probe:  # a failed probe spends nothing
                    values |= after_failure(self.config, attempts, quick, health, now)
                state = values.get("status", state)
            conn.execute(
                update(deliveries).where(deliveries.c.event_seq == claim.seq).values(**values)
            )
            self._set_endpoint(conn, **endpoint)
            if outcome.error is None and self._recovered(conn):
                self._send_waiting_now(conn, now)  # the receiver is back: catch up at once
        return state

    def _recovered(self, conn: Connection) -> bool:
        """Clear failing_since if it is set, as the row is now (not as this attempt first read
        it: another attempt's failure may have been written since), and say whether it was."""
        cleared = conn.execute(
            update(endpoints)
            .where(self._mine, endpoints.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
        return cleared.rowcount == 1

    def _send_waiting_now(self, conn: Connection, now: float) -> None:
        """Everything waiting goes now, with its quick retries back: a failure right after a
        recovery spends no attempt of the schedule until those are used up again."""
        conn.execute(
            update(deliveries)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at > now)
            .values(next_attempt_at=now, quick_retries=0)
        )

    # -- waiting and reporting -----------------------------------------------------------------

    def next_wake_in(self, probes: bool = True) -> float | None:
        """Seconds until a delivery may become claimable (one falls due, a lease expires, a
        probe is allowed, unless probes is False); None when nothing can be sent (nothing
        pending, or disabled)."""
        now = time.time()
        pending = deliveries.c.status == "pending"
        with self._begin() as conn:
            health = self._health(conn)
            due, lease_ends = conn.execute(
                select(
                    func.min(case((deliveries.c.leased_until < now, deliveries.c.next_attempt_at))),
                    func.min(case((deliveries.c.leased_until >= now, deliveries.c.leased_until))),
                ).where(pending)
            ).one()
        if health.disabled_at is not None or (due is None and lease_ends is None):
            return None
        times: list[float] = []
        if due is not None:
            times.append(float(due))
        if lease_ends is not None:
            times.append(float(lease_ends) + LEASE_EXPIRY_SLACK_S)
        if probes and health.failing_since is not None:
            times.append(health.last_attempt_at + self.config.probe_s)
        return max(0.0, min(times) - now) if times else None

    def redeliver(self, build_id: str | None = None) -> int:
        """Dead deliveries become pending again with a fresh schedule (and quick retries)."""
        statement = update(deliveries).where(deliveries.c.status == "dead")
        if build_id is not None:
            statement = statement.where(deliveries.c.build_id == build_id)
        with self.engine.begin() as conn:
            result = conn.execute(
                statement.values(
                    status="pending",
                    attempts=0,
                    quick_retries=0,
                    next_attempt_at=time.time(),
                    leased_until=0.0,
                )
            )
        return result.rowcount

    def lags(self, build_id: str | None = None, limit: int = 1000) -> list[float]:
        """Seconds from each event's storing to its first 2xx, for the latest delivered events
        (of one build), shortest first."""
        lag = deliveries.c.delivered_at - deliveries.c.queued_at
        query = (
            select(lag)
            .where(deliveries.c.status == "delivered", deliveries.c.queued_at.is_not(None))
            .order_by(deliveries.c.event_seq.desc())
            .limit(limit)
        )
        if build_id is not None:
            query = query.where(deliveries.c.build_id == build_id)
        with self.engine.connect() as conn:
            return sorted(max(float(value), 0.0) for value in conn.execute(query).scalars())

    def counts(self, build_id: str | None = None) -> dict[str, int]:
        query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if build_id is not None:
            query = query.where(deliveries.c.build_id == build_id)
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(query).all()}
