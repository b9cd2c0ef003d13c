"""Webhook delivery through receiver outages, a 410, killed deliverers and exiting CLIs, with
real receivers on loopback and real `sheen` processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from sheen_pipeline.config import Settings
from sheen_pipeline.events.payloads import BuildStarted
from sheen_pipeline.events.runtime import (
    HAND_OVER_PID_FILE,
    dispatcher_for,
    event_log,
    stored_events,
)
from sheen_pipeline.events.types import BuildEvent
from sheen_pipeline.store.tables import webhook_deliveries
from tests.support.processes import SHEEN, running, sheen, sheen_cli_env
from tests.support.receiver import Received, Receiver
from tests.support.waiting import wait_for
from tests.support.webhooks import COMPRESSED_SCHEDULE, SECRET


def first_acceptances(records: list[Received]) -> list[dict[str, Any]]:
    """Payloads as a deduplicating receiver processes them: each webhook-id once, in arrival
    order; every one verified with the standardwebhooks library."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.status == 200:
            payload = Webhook(SECRET).verify(record.body, record.headers)
            seen.setdefault(record.headers["webhook-id"], payload)
    return list(seen.values())


def assert_each_once_in_order_by_seq(records: list[Received], events: list[BuildEvent]) -> None:
    """Every event arrived (once after de-duplication by webhook-id), and a receiver that
    orders by `seq`, as the README tells receivers to, has the stored order."""
    processed = sorted(first_acceptances(records), key=lambda payload: payload["seq"])
    assert [p["id"] for p in processed] == [e.id for e in events]


def cli_env(tmp_path: Path, settings: Settings, **extra: str) -> dict[str, str]:
    return sheen_cli_env(
        tmp_path,
        SHEEN_HOME=str(settings.home),
        SHEEN_WEBHOOK_URL=settings.webhooks.url,
        SHEEN_WEBHOOK_SECRET=SECRET,
        **({"SHEEN_WEBHOOK_TIMEOUT_S": "2"} | extra),
    )


def kill_hand_over(home: Path) -> None:
    pid_file = home / HAND_OVER_PID_FILE
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def lease_end(settings: Settings, seq: int) -> float:
    with stored_events(settings).engine.connect() as conn:
        query = select(webhook_deliveries.c.leased_until).where(
            webhook_deliveries.c.event_seq == seq
        )
        return float(conn.execute(query).scalar_one())


def test_after_an_outage_waiting_events_go_out_at_once(
    webhook_env: pytest.MonkeyPatch,
) -> None:
    up = threading.Event()
    with Receiver(lambda _n: 200 if up.is_set() else 503) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        log = event_log(settings)
        emitted = [log.emit("bout", BuildStarted(prompt=f"site {n}")) for n in range(5)]
        outbox = dispatcher_for(settings, log).outbox
        # the head has used its quick retries and now waits 3 s, then 12 s (30 and 120 s at
        # full scale); probes keep trying it every 0.3 s meanwhile
        wait_for(lambda: len(receiver.received) >= 6, 20, "attempts through the outage")
        assert outbox.health().failing_since is not None
        up.set()
        wait_for(lambda: outbox.counts() == {"delivered": 5}, 2.5, "all five to catch up")
    assert_each_once_in_order_by_seq(receiver.received, emitted)
    assert outbox.health().failing_since is None


def test_a_410_disables_the_endpoint_until_enabled(
    webhook_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gone = threading.Event()
    gone.set()
    with Receiver(lambda _n: 410 if gone.is_set() else 200) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        log = stored_events(settings)
        emitted = [log.emit("bgone", BuildStarted(prompt=f"site {n}")) for n in range(3)]
        dispatcher = dispatcher_for(settings, log)
        dispatcher.drain(5)
        sent = len(receiver.received)  # the three went at once, each answered 410
        assert sent <= settings.webhooks.max_in_flight
        dispatcher.drain(1)
        assert len(receiver.received) == sent  # nothing more is sent after the 410
        assert dispatcher.outbox.next_wake_in() is None  # and nothing waits to be sent
        env = cli_env(tmp_path, settings)
        status = sheen(env, "webhooks", "status")
        assert status.returncode == 0, status.stderr
        assert "endpoint: disabled since" in status.stdout and "HTTP 410" in status.stdout
        assert "pending: 3" in status.stdout

        gone.clear()
        assert sheen(env, "webhooks", "enable").returncode == 0
        dispatcher.drain(5)
    assert_each_once_in_order_by_seq(receiver.received, emitted)


def test_a_deliverer_killed_mid_delivery_is_taken_over_within_the_lease(
    webhook_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold_the_second(number: int) -> int:
        if number == 2:
            held.set()
            release.wait(30)
        return 200

    with Receiver(hold_the_second) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        log = stored_events(settings)
        emitted = [log.emit("bkill", BuildStarted(prompt=f"site {n}")) for n in range(4)]
        env = cli_env(tmp_path, settings, SHEEN_WEBHOOK_LEASE_S="1", SHEEN_WEBHOOK_TIMEOUT_S="30")
        with running([SHEEN, "webhooks", "deliver"], env, tmp_path / "d1.log") as first:
            wait_for(held.is_set, 30, "the first deliverer to be mid-delivery")
            held_id = receiver.received[1].headers["webhook-id"]
            held_seq = next(e.seq for e in emitted if e.id == held_id)
            outbox = dispatcher_for(settings, log).outbox
            past_first_lease = time.time() + 1.0
            wait_for(
                lambda: lease_end(settings, held_seq) > past_first_lease + 0.5,
                10,
                "the lease to be renewed past its first end",
            )
            assert held_seq not in [c.seq for c in outbox.claim()]  # renewed: nobody may take it
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        deadline = time.monotonic() + 10  # the bound on resuming, from the kill
        with running([SHEEN, "webhooks", "deliver"], env, tmp_path / "d2.log"):
            wait_for(
                lambda: outbox.counts() == {"delivered": 4},
                deadline - time.monotonic(),
                "the second deliverer to finish within 10 s of the kill",
            )
        release.set()
    assert_each_once_in_order_by_seq(receiver.received, emitted)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids.count(held_id) == 2  # the one in flight, sent again with the same id


def test_a_cli_build_hands_pending_deliveries_over_and_exits(
    webhook_env: pytest.MonkeyPatch, tmp_path: Path, sheen_home: Path
) -> None:
    cli_done = threading.Event()

    def wait_for_the_cli(_number: int) -> int:
        return 200 if cli_done.is_set() else 503

    with Receiver(wait_for_the_cli) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        env = cli_env(
            tmp_path,
            settings,
            SHEEN_WEBHOOK_SCHEDULE=COMPRESSED_SCHEDULE,
            SHEEN_WEBHOOK_PROBE_S="0.3",
        )
        try:
            result = sheen(env, "build", "a one-page site for a bakery", "--json")
            cli_done.set()
            assert result.returncode == 0, result.stderr
            build_id = json.loads(result.stdout.splitlines()[-1])["build_id"]
            assert receiver.accepted() == []  # nothing went out while the CLI ran
            assert (sheen_home / HAND_OVER_PID_FILE).exists()
            events = stored_events(settings).after(build_id)
            outbox = dispatcher_for(settings).outbox
            wait_for(lambda: outbox.counts() == {"delivered": len(events)}, 60, "the hand-over")
        finally:
            kill_hand_over(sheen_home)
    assert_each_once_in_order_by_seq(receiver.received, events)


def test_a_receiver_down_20s_then_failing_half_gets_every_event_despite_a_killed_deliverer(
    webhook_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The acceptance case: the spec's own schedule (probes every second), a whole build's
    events, a receiver down for 20 s then failing every other request, and the deliverer
    SIGKILLed while it sends the first event after the outage."""
    started = time.monotonic()
    held, release = threading.Event(), threading.Event()
    answered = 0

    def outage_then_half(_number: int) -> int:
        nonlocal answered
        if time.monotonic() - started < 20:
            return 503
        if not held.is_set():
            held.set()
            release.wait(60)  # the deliverer is killed meanwhile
            return 200
        answered += 1
        return 500 if answered % 2 else 200

    with Receiver(outage_then_half) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        env = cli_env(tmp_path, settings, SHEEN_WEBHOOK_PROBE_S="1")  # the default schedule
        with running([SHEEN, "webhooks", "deliver"], env, tmp_path / "d1.log") as first:
            result = sheen(env, "build", "a one-page site for a bakery", "--json")
            assert result.returncode == 0, result.stderr
            build_id = json.loads(result.stdout.splitlines()[-1])["build_id"]
            wait_for(held.is_set, 60, "the receiver to come back")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        with running([SHEEN, "webhooks", "deliver"], env, tmp_path / "d2.log"):
            events = stored_events(settings).after(build_id)
            outbox = dispatcher_for(settings).outbox
            wait_for(lambda: outbox.counts() == {"delivered": len(events)}, 120, "every event")
            release.set()
    assert len(events) >= 15
    assert_each_once_in_order_by_seq(receiver.received, events)
    assert any(r.status == 500 for r in receiver.received)  # the half failures happened
