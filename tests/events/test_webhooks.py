"""Webhook delivery to real receivers on loopback: unreliable, slow and dead ones."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context
from standardwebhooks import Webhook

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.sensors import webhook_delivery_sensor
from sheen_pipeline.events.payloads import BuildStarted
from sheen_pipeline.events.runtime import (
    dispatcher_for,
    event_log,
    stored_events,
)
from sheen_pipeline.events.signing import verify_webhook
from sheen_pipeline.events.types import EventType
from sheen_pipeline.service import BuildService
from tests.support.builds import build
from tests.support.processes import sheen_cli_env, sheen_here
from tests.support.receiver import Receiver
from tests.support.sensors import resources
from tests.support.waiting import wait_for
from tests.support.webhooks import SECRET


def all_settled(service: BuildService) -> bool:
    dispatcher = dispatcher_for(service.settings, service.events)
    return dispatcher.counts().get("pending", 0) == 0


def test_unreliable_receiver_gets_every_event_once_and_orders_them_by_seq(
    webhook_env: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    def flaky(number: int) -> int:
        if number % 3 == 0:
            time.sleep(0.2)  # a slow answer
        return 500 if number % 2 else 200  # every other request fails

    with Receiver(flaky) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        service = BuildService.from_env()
        outcome, _ = build(instance, service)
        assert outcome.status == "succeeded"
        wait_for(lambda: all_settled(service), 60, "every webhook to be delivered")
        accepted = receiver.accepted()

    events = service.events.after(outcome.build_id)
    assert len(events) >= 15
    assert len(receiver.received) > len(events)  # failures were retried
    first_seen: dict[str, int] = {}
    for record in accepted:
        payload = Webhook(SECRET).verify(record.body, record.headers)  # as receivers would
        assert verify_webhook(record.body, record.headers, SECRET) == payload["id"]
        first_seen.setdefault(payload["id"], payload["seq"])
    assert set(first_seen) == {event.id for event in events}  # each id processed once after dedup
    by_seq = sorted(first_seen, key=first_seen.__getitem__)  # what the README tells receivers
    assert by_seq == [event.id for event in events]
    assert events[-1].type is EventType.BUILD_COMPLETED


STUCK_S = 120  # longer than a build and the wait for the room to fill on a loaded machine


def test_a_stuck_receiver_does_not_hold_up_the_build(
    webhook_env: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    release = threading.Event()

    def stuck(_number: int) -> int:  # held until released, within the sender's time limit
        release.wait(STUCK_S)
        return 200

    with Receiver(stuck) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        webhook_env.setenv("SHEEN_WEBHOOK_TIMEOUT_S", str(2 * STUCK_S))
        # the fixture's 1 s lease, renewed every 0.33 s, lapsed on a loaded machine and a held
        # request was claimed again: this test is about the room, not about leases
        webhook_env.setenv("SHEEN_WEBHOOK_LEASE_S", "30")
        service = BuildService.from_env()
        try:
            outcome, _ = build(instance, service)
            assert outcome.status == "succeeded"
            room = service.settings.webhooks.max_in_flight
            wait_for(lambda: len(receiver.received) >= room, 60, "the endpoint's room to fill")
            assert len(receiver.received) == room, receiver.received  # no more than its room
            assert not release.is_set()  # the build finished while the receiver held them
        finally:
            release.set()
        wait_for(lambda: all_settled(service), 60, "the held deliveries to go out")
        assert len(receiver.accepted()) == len(service.events.after(outcome.build_id))


def test_dead_deliveries_are_kept_and_redelivered_by_the_cli(
    webhook_env: pytest.MonkeyPatch, sheen_home: Path, tmp_path: Path
) -> None:
    healthy = threading.Event()
    with Receiver(lambda _n: 200 if healthy.is_set() else 503) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        webhook_env.setenv("SHEEN_WEBHOOK_SCHEDULE", "0,0.05")  # two attempts
        settings = Settings.from_env()
        log = event_log(settings)
        emitted = [log.emit("bdead", BuildStarted(prompt=f"site {n}")) for n in range(3)]
        dispatcher = dispatcher_for(settings, log)
        wait_for(lambda: dispatcher.counts().get("dead") == 3, 30, "three dead deliveries")
        with log.engine.connect() as conn:
            errors = (
                conn.exec_driver_sql("select last_error from webhook_deliveries").scalars().all()
            )
        assert errors == ["HTTP 503"] * 3

        healthy.set()
        env = sheen_cli_env(tmp_path, **{k: v for k, v in webhook_env_vars(settings).items()})
        result = sheen_here(env, "webhooks", "redeliver", "--build-id", "bdead")
        assert result.returncode == 0, result.stderr
        assert "3 deliveries queued again" in result.stdout
        assert "pending: 0, delivered: 3, dead: 0" in result.stdout
        delivered = sorted(json.loads(r.body)["id"] for r in receiver.accepted())
        assert delivered == sorted(event.id for event in emitted)


def webhook_env_vars(settings: Settings) -> dict[str, str]:
    return {
        "SHEEN_HOME": str(settings.home),
        "SHEEN_WEBHOOK_URL": settings.webhooks.url,
        "SHEEN_WEBHOOK_SECRET": settings.webhooks.secret,
    }


def test_reading_events_sends_no_webhook(webhook_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with Receiver() as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        stored_events(settings).emit("bread", BuildStarted(prompt="a site"))  # pending delivery
        env = sheen_cli_env(tmp_path, **webhook_env_vars(settings))
        result = sheen_here(env, "events", "bread", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["type"] == "build_started"
    assert receiver.received == []  # the reader neither sent it nor flushed it on exit
    assert dispatcher_for(settings).counts() == {"pending": 1}


def test_the_daemons_sensor_hands_what_any_process_left_pending_to_one_deliverer(
    webhook_env: pytest.MonkeyPatch,
) -> None:
    """The tick sends nothing itself (it stays short): it starts a background deliverer, which
    exits when nothing is left; while a long-running deliverer (`sheen serve`) is alive, a tick
    starts none."""
    with Receiver() as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        log = stored_events(settings)  # emitted by a process that has since ended
        emitted = [log.emit("bleft", BuildStarted(prompt=f"site {n}")) for n in range(3)]
        with build_sensor_context(resources=resources()) as context:
            first = webhook_delivery_sensor(context)
        assert isinstance(first, SkipReason)
        assert first.skip_message == "handed 3 pending deliveries to a new deliverer"
        outbox = dispatcher_for(settings).outbox
        wait_for(lambda: len(receiver.accepted()) == 3 or None, 60, "3 deliveries")
        wait_for(lambda: outbox.health().deliverer_seen_at == 0.0, 60, "the deliverer to leave")
        outbox.mark_deliverer_alive()  # as `sheen serve` does
        log.emit("bleft", BuildStarted(prompt="one more"))
        with build_sensor_context(resources=resources()) as context:
            second = webhook_delivery_sensor(context)
    assert isinstance(second, SkipReason)
    assert second.skip_message == "1 pending deliveries; a deliverer is alive"
    ids = [json.loads(r.body)["id"] for r in receiver.accepted()]
    assert set(ids[:3]) == {e.id for e in emitted}
