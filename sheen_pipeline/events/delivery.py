"""Webhook delivery from the outbox: in event order within a build, retried with exponential
backoff, rate-limited across all builds and processes, dead after the last attempt."""

from __future__ import annotations

import json
import logging
import random
import threading
import time

import requests
from sqlalchemy import Engine, func, select, update

from sheen_pipeline.config import WebhookSettings
from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.signing import signed_headers
from sheen_pipeline.redaction import redact
from sheen_pipeline.store.rate import take
from sheen_pipeline.store.tables import webhook_deliveries as deliveries

log = logging.getLogger(__name__)

LEASE_S = 60.0
RATE_WAIT_S = 0.1
RATE_LIMIT_NAME = "webhooks"


class WebhookDispatcher:
    """Any number of dispatchers (in run workers, the CLI, `sheen serve`) may run at once: each
    delivery is claimed with a lease, and only the oldest pending event of a build is claimable."""

    def __init__(self, engine: Engine, events: EventLog, config: WebhookSettings) -> None:
        self.engine = engine
        self.events = events
        self.config = config
        self.session = requests.Session()

    def _claim_heads(self, now: float) -> list[int]:
        heads = (
            select(func.min(deliveries.c.event_seq))
            .where(deliveries.c.status == "pending")
            .group_by(deliveries.c.build_id)
        )
        claimed = []
        with self.engine.begin() as conn:
            for (seq,) in conn.execute(heads).all():
                claim = (
                    update(deliveries)
                    .where(
                        deliveries.c.event_seq == seq,
                        deliveries.c.status == "pending",
                        deliveries.c.next_attempt_at <= now,
                        deliveries.c.leased_until < now,
                    )
                    .values(leased_until=now + LEASE_S)
                )
                if conn.execute(claim).rowcount == 1:
                    claimed.append(seq)
        return claimed

    def deliver_due(self) -> tuple[int, bool]:
        """Attempt every delivery that is due now: how many were attempted, and whether the
        global rate limit held some back."""
        attempted, limited = 0, False
        for seq in self._claim_heads(time.time()):
            if limited or not take(self.engine, RATE_LIMIT_NAME, self.config.rate_per_s, 1.0):
                limited = True
                self._release(seq)
                continue
            self._attempt(seq)
            attempted += 1
        return attempted, limited

    def _release(self, seq: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries).where(deliveries.c.event_seq == seq).values(leased_until=0.0)
            )

    def _attempt(self, seq: int) -> None:
        event = self.events.get(seq)
        body = json.dumps(event.payload()).encode()
        headers = signed_headers(self.config.secret, event.id, body)  # one id for every retry
        try:
            response = self.session.post(
                self.config.url, data=body, headers=headers, timeout=self.config.timeout_s
            )
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except requests.RequestException as exception:
            error = f"{type(exception).__name__}: {exception}"
        self._record(seq, None if error is None else redact(error, (self.config.secret,)))

    def _record(self, seq: int, error: str | None) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            attempts = (
                conn.execute(
                    select(deliveries.c.attempts).where(deliveries.c.event_seq == seq)
                ).scalar_one()
                + 1
            )
            values: dict[str, object] = {
                "attempts": attempts,
                "leased_until": 0.0,
                "last_error": error,
            }
            if error is None:
                values |= {"status": "delivered", "delivered_at": now}
            elif attempts >= self.config.max_attempts:
                values |= {"status": "dead"}
                log.warning(
                    "webhook for event %s is dead after %s attempts: %s", seq, attempts, error
                )
            else:
                delay = self.config.backoff_s * 2 ** (attempts - 1) * (0.75 + random.random() / 2)
                values |= {"next_attempt_at": now + delay}
            conn.execute(update(deliveries).where(deliveries.c.event_seq == seq).values(**values))

    def drain(self, budget_s: float) -> int:
        """Send what is due, pass after pass, for at most about budget_s; how many were sent."""
        deadline, sent = time.monotonic() + budget_s, 0
        while time.monotonic() < deadline:
            attempted, limited = self.deliver_due()
            sent += attempted
            if not attempted and not limited:
                break
            if limited:
                time.sleep(RATE_WAIT_S)
        return sent

    def next_due_in(self) -> float | None:
        """Seconds until the next pending delivery is due, None when nothing is pending."""
        with self.engine.connect() as conn:
            due = conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.status == "pending"
                )
            ).scalar()
        return None if due is None else max(0.0, due - time.time())

    def run(self, stop: threading.Event, wake: threading.Event, idle_s: float = 1.0) -> None:
        """Deliver until stop is set; an emitted event sets wake so it goes out at once."""
        while not stop.is_set():
            try:
                attempted, limited = self.deliver_due()
                due = self.next_due_in()
            except Exception:  # a database hiccup must not kill the dispatcher
                log.exception("webhook dispatcher pass failed")
                attempted, limited, due = 0, False, None
            if attempted and not limited:
                continue
            wait = RATE_WAIT_S if limited else idle_s if due is None else min(idle_s, due)
            wake.wait(max(wait, 0.01))
            wake.clear()

    def redeliver(self, build_id: str | None = None) -> int:
        """Make dead deliveries pending again, with a fresh count of attempts."""
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
