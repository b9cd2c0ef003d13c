"""Webhook delivery from the outbox, signed per Standard Webhooks: in event order within a
build, retried on the configured schedule, rate-limited across all builds and processes."""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import partial

import requests
from sqlalchemy import Engine

from sheen_pipeline.background import repeating
from sheen_pipeline.config import WebhookSettings
from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.outbox import Claim, Outbox, Outcome
from sheen_pipeline.events.signing import signed_headers
from sheen_pipeline.redaction import redact
from sheen_pipeline.store.rate import take

log = logging.getLogger(__name__)

RATE_WAIT_S = 0.1
RATE_LIMIT_NAME = "webhooks"
IDLE_POLL_S = 2.0  # events emitted by other processes are noticed this fast
GONE = 410  # the receiver asks never to be called again (Standard Webhooks)


class WebhookDispatcher:
    """Any number of dispatchers (in run workers, the CLI, `sheen serve`, the daemon) may run at
    once: each delivery is claimed with a short lease that is renewed while it is sent, so a
    killed dispatcher's claim expires within lease_s and another one carries on."""

    def __init__(self, engine: Engine, events: EventLog, config: WebhookSettings) -> None:
        self.engine = engine
        self.events = events
        self.config = config
        self.outbox = Outbox(engine, config)
        self.session = requests.Session()

    def deliver_due(self) -> tuple[int, bool]:
        """Attempt every delivery that may go now: how many were attempted, and whether the
        global rate limit held some back."""
        attempted, limited = 0, False
        for claim in self.outbox.claim():
            if limited or not take(self.engine, RATE_LIMIT_NAME, self.config.rate_per_s, 1.0):
                limited = True
                self.outbox.release(claim.seq)
                continue
            self._attempt(claim)
            attempted += 1
        return attempted, limited

    def _attempt(self, claim: Claim) -> None:
        event = self.events.get(claim.seq)
        body = json.dumps(event.payload()).encode()
        headers = signed_headers(self.config.secret, event.id, body)  # one id for every retry
        renew = partial(self.outbox.renew, claim.seq)  # while the request is in flight
        with repeating(renew, self.config.lease_s / 3, "sheen-webhook-lease"):
            try:
                response = self.session.post(
                    self.config.url, data=body, headers=headers, timeout=self.config.timeout_s
                )
                status = response.status_code
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except requests.RequestException as exception:
                status, error = 0, f"{type(exception).__name__}: {exception}"
        if error is not None:
            error = redact(error, (self.config.secret,))
        state = self.outbox.record(claim, Outcome(error, gone=status == GONE))
        if status == GONE:
            log.warning(
                "webhook endpoint answered 410 Gone: disabled until `sheen webhooks enable`"
            )
        elif state == "dead":
            log.warning("webhook for event %s is dead after its last attempt: %s", claim.seq, error)

    def drain(self, budget_s: float) -> int:
        """Send what may go, pass after pass, for at most about budget_s; how many were sent."""
        deadline, sent = time.monotonic() + budget_s, 0
        while time.monotonic() < deadline:
            attempted, limited = self.deliver_due()
            sent += attempted
            if not attempted and not limited:
                break
            if limited:
                time.sleep(RATE_WAIT_S)
        return sent

    def run(
        self,
        stop: threading.Event,
        wake: threading.Event,
        *,
        long_running: bool = False,
        until_idle: bool = False,
    ) -> None:
        """Deliver until stop is set (or, until_idle, nothing is left to send); an event emitted in this process sets
        wake so it goes out at once. Between passes it sleeps until the next delivery can go,
        so waiting for a retry costs no CPU. A long-running dispatcher says it is alive, so
        short-lived processes hand their deliveries over to it."""
        while not stop.is_set():
            try:
                if long_running:
                    self.outbox.mark_deliverer_alive()
                attempted, limited = self.deliver_due()
                due = self.outbox.next_wake_in()
                if due is None and until_idle:
                    self.outbox.mark_deliverer_gone()
                    return
            except Exception:  # a database hiccup must not kill the dispatcher
                log.exception("webhook dispatcher pass failed")
                attempted, limited, due = 0, False, None
            if attempted and not limited:
                continue
            wait = RATE_WAIT_S if limited else IDLE_POLL_S if due is None else min(IDLE_POLL_S, due)
            wake.wait(max(wait, 0.01))
            wake.clear()

    def redeliver(self, build_id: str | None = None) -> int:
        return self.outbox.redeliver(build_id)

    def counts(self, build_id: str | None = None) -> dict[str, int]:
        return self.outbox.counts(build_id)
