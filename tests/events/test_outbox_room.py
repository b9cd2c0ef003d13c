"""The endpoint's room (max_in_flight) holds across processes claiming at the same moment: a
claim counts what is in flight and leases in one turn, which no other claim of the endpoint
interleaves with."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event

from sheen_pipeline.config import WebhookSettings
from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.outbox import Claim, Outbox
from sheen_pipeline.events.payloads import BuildStarted
from sheen_pipeline.store.engines import engine_for
from tests.support.webhooks import SECRET

ROOM = 2
# How long the first claimer waits, after counting, for the second to finish: with claims taking
# turns the second cannot even start until the first is done, so the wait ends at this deadline.
INTERLEAVE_DEADLINE_S = 1.0


def test_two_claimers_at_once_never_exceed_the_endpoints_room(database_url: str) -> None:
    engine = engine_for(database_url)
    config = WebhookSettings(url="http://127.0.0.1:9/hook", secret=SECRET, max_in_flight=ROOM)
    log = EventLog(engine, webhooks_enabled=True)
    for n in range(2 * ROOM):
        log.emit("broom", BuildStarted(prompt=f"site {n}"))
    first, second = Outbox(engine, config), Outbox(engine, config)
    first.claim_hand_over()  # both rows exist before the race (each claimer makes it when not)
    first_counted, second_done = threading.Event(), threading.Event()
    first_thread = threading.current_thread()
    claims: list[Claim] = []

    def interleave(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Between the first claimer's count of what is in flight and its leases, the second
        claims: without turns, both see an empty endpoint."""
        counting = statement.lstrip().upper().startswith("SELECT COUNT")
        if counting and threading.current_thread() is first_thread:
            first_counted.set()
            second_done.wait(INTERLEAVE_DEADLINE_S)

    def claim_second() -> None:
        first_counted.wait(30)
        claims.extend(second.claim())
        second_done.set()

    other = threading.Thread(target=claim_second)
    event.listen(engine, "after_cursor_execute", interleave)
    try:
        other.start()
        claims.extend(first.claim())
    finally:
        event.remove(engine, "after_cursor_execute", interleave)
        other.join(60)
    assert first_counted.is_set() and second_done.is_set()
    assert len(claims) == ROOM, f"{len(claims)} deliveries leased where the room is {ROOM}"
    assert len({claim.seq for claim in claims}) == ROOM


def test_a_claim_that_finds_nothing_to_lease_writes_nothing(database_url: str) -> None:
    """Deliverers claim on every event and every wake: one that finds the endpoint full, or
    nothing due, must not take the endpoint's turn (a write, and on SQLite a commit)."""
    engine = engine_for(database_url)
    config = WebhookSettings(url="http://127.0.0.1:9/hook", secret=SECRET, max_in_flight=ROOM)
    log = EventLog(engine, webhooks_enabled=True)
    outbox = Outbox(engine, config)
    outbox.claim_hand_over()
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    event.listen(engine, "after_cursor_execute", note)
    try:
        assert outbox.claim() == []  # nothing stored yet
        for n in range(ROOM + 1):
            log.emit("bfull", BuildStarted(prompt=f"site {n}"))
        statements.clear()
        assert len(outbox.claim()) == ROOM  # this one takes the turn and leases
        assert "UPDATE" in statements
        statements.clear()
        assert outbox.claim() == []  # the endpoint is full, one more is due
    finally:
        event.remove(engine, "after_cursor_execute", note)
    assert statements and set(statements) == {"SELECT"}
