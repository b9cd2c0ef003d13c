"""Webhook delivery from the outbox, signed per Standard Webhooks: each event on its own (a few
at once, so one slow or failing event holds no other back), retried quickly while the receiver
is otherwise up and then on the configured schedule, rate-limited across all processes."""

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
from sheen_pipeline.store.engines import database_exists
from sheen_pipeline.store.rate import take

log = logging.getLogger(__name__)

RATE_WAIT_S = 0.1
RATE_LIMIT_NAME = "webhooks"
IDLE_POLL_S = 2.0  # events emitted by other processes are noticed this fast
# A hand-over deliverer leaves retries due later than this to the long-running deliverers
# (`sheen serve`, the daemon's sensor) or the next command, instead of waiting hours for them.
HAND_OVER_HORIZON_S = 60.0
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
        self._sessions = threading.local()  # a requests.Session is not shared between threads

    def deliver_due(
        self, wait: bool = True, done: threading.Event | None = None
    ) -> tuple[int, bool]:
        """Start every delivery that may go now, each in a thread of its own (the outbox hands
        out no more than the endpoint's room), and with wait, wait for their answers; done is
        set as each one ends. Returns how many were started, and whether the global rate limit
        held some back."""
        allowed, limited = [], False
        for claim in self.outbox.claim():
            if limited or not take(self.engine, RATE_LIMIT_NAME, self.config.rate_per_s, 1.0):
                limited = True
                self.outbox.release(claim.seq)
                continue
            allowed.append(claim)
        senders = [
            threading.Thread(
                target=self._send, args=(claim, done), name="sheen-webhook-send", daemon=True
            )
            for claim in allowed
        ]
        for sender in senders:
            sender.start()
        if wait:
            for sender in senders:
                sender.join()
        return len(allowed), limited

    def _send(self, claim: Claim, done: threading.Event | None) -> None:
        try:
            self._attempt(claim)
        except Exception:  # its lease runs out, and the delivery is tried again
            log.exception("webhook delivery of event %s failed to complete", claim.seq)
        finally:
            if done is not None:
                done.set()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def _attempt(self, claim: Claim) -> None:
        event = self.events.get(claim.seq)
        body = json.dumps(event.payload()).encode()
        headers = signed_headers(self.config.secret, event.id, body)  # one id for every retry
        renew = partial(self.outbox.renew, claim.seq)  # while the request is in flight
        with repeating(renew, self.config.lease_s / 3, "sheen-webhook-lease"):
            try:
                response = self._session().post(
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
        """Deliver until stop is set; an event emitted in this process sets wake so it goes out
        at once. Between passes it sleeps until the next delivery can go, so waiting for a
        retry costs no CPU. A long-running dispatcher says it is alive, so short-lived processes
        hand their deliveries over to it. until_idle (a hand-over deliverer) returns once
        nothing is due within HAND_OVER_HORIZON_S by its schedule (probes of a receiver that is
        down do not count), or when its SQLite database was deleted."""
        while not stop.is_set():
            try:
                if until_idle and not database_exists(self.engine):
                    log.warning("the webhook outbox's database is gone; the deliverer stops")
                    return
                if long_running:
                    self.outbox.mark_deliverer_alive()
                attempted, limited = self.deliver_due(wait=False, done=wake)
                due = self.outbox.next_wake_in()
                if until_idle and not self._due_soon():
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

    def _due_soon(self) -> bool:
        """A delivery falls due within HAND_OVER_HORIZON_S by its own schedule (a probe of a
        receiver that is down is no reason to stay)."""
        due = self.outbox.next_wake_in(probes=False)
        return due is not None and due <= HAND_OVER_HORIZON_S

    def redeliver(self, build_id: str | None = None) -> int:
        return self.outbox.redeliver(build_id)

    def counts(self, build_id: str | None = None) -> dict[str, int]:
        return self.outbox.counts(build_id)
