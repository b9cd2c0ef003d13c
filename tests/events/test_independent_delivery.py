"""Each event is delivered on its own: a failing one holds back no other of its build, a receiver
that is otherwise up gets a failed event again within moments, what a receiver waited is
measured, and however many commands end with deliveries pending, one background deliverer takes
them over and stops when its database is gone."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import select

from sheen_pipeline.config import Settings
from sheen_pipeline.events.payloads import BuildStarted
from sheen_pipeline.events.runtime import dispatcher_for, event_log
from sheen_pipeline.metrics import StoreCollector
from sheen_pipeline.store.tables import webhook_deliveries
from tests.conftest import REPO_ROOT
from tests.support.processes import SHEEN, sheen_cli_env, sheen_here
from tests.support.receiver import Receiver
from tests.support.waiting import free_port, wait_for
from tests.support.webhooks import SECRET
from tests.support.zygote import forked_sheen


def test_a_failing_event_holds_back_no_later_event_of_its_build(
    webhook_env: pytest.MonkeyPatch,
) -> None:
    others_in = threading.Event()

    def fail_the_first_until_the_rest_are_in(number: int) -> int:
        first = receiver.received[number - 1].headers["webhook-id"] == emitted[0].id
        return 500 if first and not others_in.is_set() else 200

    with Receiver(fail_the_first_until_the_rest_are_in) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        log = event_log(settings)
        emitted = [log.emit("bfree", BuildStarted(prompt=f"site {n}")) for n in range(6)]
        accepted_ids = lambda: {r.headers["webhook-id"] for r in receiver.accepted()}  # noqa: E731
        wait_for(
            lambda: accepted_ids() == {e.id for e in emitted[1:]},
            30,
            "the later events to arrive while the first is being retried",
        )
        outbox = dispatcher_for(settings, log).outbox
        expected = {"pending": 1, "delivered": 5}  # answered; now recorded as well
        wait_for(lambda: outbox.counts() == expected, 30, "the five to be recorded delivered")
        others_in.set()
        wait_for(lambda: outbox.counts() == {"delivered": 6}, 30, "the first event at last")


def test_while_the_receiver_is_up_a_failed_event_goes_again_at_once_and_lag_is_measured(
    webhook_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The spec's schedule (5 s, then 5 minutes), and a receiver that fails every event's first
    attempt but the first event's: each is delivered by a quick retry, not the schedule."""
    tried: set[str] = set()

    def fail_each_first_attempt(number: int) -> int:
        webhook_id = receiver.received[number - 1].headers["webhook-id"]
        first_attempt = webhook_id not in tried
        tried.add(webhook_id)
        return 500 if first_attempt and number > 1 else 200

    webhook_env.delenv("SHEEN_WEBHOOK_SCHEDULE")
    webhook_env.setenv("SHEEN_WEBHOOK_PROBE_S", "15")
    webhook_env.setenv("SHEEN_WEBHOOK_QUICK_RETRY_S", "0.05")
    with Receiver(fail_each_first_attempt) as receiver:
        webhook_env.setenv("SHEEN_WEBHOOK_URL", receiver.url)
        settings = Settings.from_env()
        log = event_log(settings)
        outbox = dispatcher_for(settings, log).outbox
        log.emit("bquick", BuildStarted(prompt="the receiver is up"))
        wait_for(lambda: outbox.counts() == {"delivered": 1}, 30, "the first event")
        for n in range(4):
            log.emit("bquick", BuildStarted(prompt=f"site {n}"))
        wait_for(lambda: outbox.counts() == {"delivered": 5}, 30, "the other four")
        requests_per_event = Counter(r.headers["webhook-id"] for r in receiver.received)
    with log.engine.connect() as conn:
        attempts = conn.execute(
            select(webhook_deliveries.c.attempts).order_by(webhook_deliveries.c.event_seq)
        ).scalars()
        assert list(attempts) == [1] * 5  # the one that succeeded: no attempt of the schedule
    assert sorted(requests_per_event.values()) == [1, 2, 2, 2, 2]  # each failed once, then in

    env = sheen_cli_env(
        tmp_path,
        SHEEN_HOME=str(settings.home),
        SHEEN_WEBHOOK_URL=settings.webhooks.url,
        SHEEN_WEBHOOK_SECRET=SECRET,
    )
    status = sheen_here(env, "webhooks", "status")
    assert status.returncode == 0, status.stderr
    assert "lag (stored to delivered, last 5): p50 " in status.stdout
    registry = CollectorRegistry()
    registry.register(StoreCollector(settings.database_url))
    exposition = generate_latest(registry).decode()
    assert "sheen_webhook_delivery_lag_seconds_count 5.0" in exposition
    assert 'sheen_webhook_delivery_lag_seconds_bucket{le="+Inf"} 5.0' in exposition


def deliverers_of(home: Path) -> list[int]:
    """Background deliverers (`sheen webhooks deliver --until-idle`) serving this SHEEN_HOME."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or b"--until-idle" not in (entry / "cmdline").read_bytes():
                continue
            if f"SHEEN_HOME={home}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_ten_cli_builds_with_the_receiver_down_leave_one_deliverer_that_stops_with_its_home(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = sheen_cli_env(
        tmp_path,
        SHEEN_HOME=str(home),
        SHEEN_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook",  # nothing listens
        SHEEN_WEBHOOK_SECRET=SECRET,
        SHEEN_WEBHOOK_SCHEDULE="0,10,10,10,10,10,10,10",  # retries stay within the minute
    )
    assert sheen_here(env, "init").returncode == 0
    logs = [tmp_path / f"build-{n}.log" for n in range(10)]
    builds = [  # processes of their own, forked from one that imported the CLI once
        forked_sheen([SHEEN, "build", f"a one-page site for bakery {n}"], env, REPO_ROOT, log)
        for n, log in enumerate(logs)  # the outcome line too: a failure says why here
    ]
    try:
        exits = [process.wait(300) for process in builds]
        failed = [log.read_text()[-3000:] for log, code in zip(logs, exits, strict=True) if code]
        assert not failed, failed
        assert len(wait_for(lambda: deliverers_of(home), 30, "the hand-over deliverer")) == 1
        assert len(deliverers_of(home)) == 1  # the others reused it
        shutil.rmtree(home, ignore_errors=True)  # the deliverer's SQLite journal comes and goes
        assert not (home / "sheen.db").exists()
        wait_for(lambda: not deliverers_of(home), 30, "the deliverer to notice its home is gone")
    finally:
        for process in builds:
            process.kill()
