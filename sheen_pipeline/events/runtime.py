"""One event log per process, with a background webhook dispatcher when webhooks are set; what
a short-lived process leaves unsent is handed over to a long-running deliverer."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import cache

from sheen_pipeline.config import Settings
from sheen_pipeline.events.delivery import WebhookDispatcher
from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.types import BuildEvent
from sheen_pipeline.logs import get_logger
from sheen_pipeline.store.engines import engine_for

_log = get_logger("sheen_pipeline.events")
HAND_OVER_PID_FILE = "webhook-deliverer.pid"  # the last deliverer a short-lived process started


@dataclass
class _Background:
    settings: Settings
    dispatcher: WebhookDispatcher
    stop: threading.Event
    wake: threading.Event


_running: list[_Background] = []


def stored_events(settings: Settings) -> EventLog:
    """The event log without a dispatcher: what readers use, so reading never sends webhooks
    or claims a delivery."""
    engine = engine_for(settings.database_url)
    return EventLog(engine, webhooks_enabled=settings.webhooks.enabled, secrets=settings.secrets)


def dispatcher_for(settings: Settings, events: EventLog | None = None) -> WebhookDispatcher:
    """A dispatcher over settings' outbox; without events, for a command that delivers in the
    foreground (and so starts no background thread)."""
    events = events or stored_events(settings)
    return WebhookDispatcher(events.engine, events, settings.webhooks)


@cache
def event_log(settings: Settings) -> EventLog:
    """Events of this process; with webhooks, a daemon thread delivers them as they happen,
    so a slow receiver never holds up a build. What it has not sent when the process ends is
    handed over (see hand_over)."""
    events = stored_events(settings)
    events.add_listener(_log_event)
    if not settings.webhooks.enabled:
        return events
    background = _Background(
        settings, dispatcher_for(settings, events), threading.Event(), threading.Event()
    )
    events.add_listener(lambda _event: background.wake.set())
    threading.Thread(
        target=background.dispatcher.run,
        args=(background.stop, background.wake),
        name="sheen-webhooks",
        daemon=True,
    ).start()
    if not _running:
        atexit.register(_hand_over_at_exit)
    _running.append(background)
    return events


def start_deliverer(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """A long-running deliverer thread (for `sheen serve`): it sends whatever any process left
    pending, and tells short-lived processes it is there."""
    if not settings.webhooks.enabled:
        return None
    thread = threading.Thread(
        target=dispatcher_for(settings).run,
        args=(stop, threading.Event()),
        kwargs={"long_running": True},
        name="sheen-webhook-deliverer",
        daemon=True,
    )
    thread.start()
    return thread


def _log_event(event: BuildEvent) -> None:
    """Every event is also a structured log line, with the build and task it concerns."""
    task_id = event.data.get("task_id")
    _log.info(
        event.type.value,
        build_id=event.build_id,
        seq=event.seq,
        **({"task_id": task_id} if task_id else {}),
    )


def hand_over(settings: Settings, dispatcher: WebhookDispatcher) -> bool:
    """Leave pending deliveries to a long-running deliverer instead of waiting for them:
    when none is alive (no `sheen serve`, no daemon, no earlier hand-over), start one in the
    background, one per database however many commands end at once, that exits once nothing is
    due within a minute or its database is gone. True when a deliverer was started."""
    if dispatcher.counts().get("pending", 0) == 0 or not dispatcher.outbox.claim_hand_over():
        return False
    settings.home.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "SHEEN_HOME": str(settings.home),
        "SHEEN_DATABASE_URL": settings.database_url,
    }
    with open(settings.home / "webhook-deliverer.log", "ab") as log_file:
        deliverer = subprocess.Popen(
            [sys.executable, "-m", "sheen_pipeline.cli", "webhooks", "deliver", "--until-idle"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # outlives this process and its terminal
        )
    (settings.home / HAND_OVER_PID_FILE).write_text(f"{deliverer.pid}\n")
    return True


def _hand_over_at_exit() -> None:
    for background in _running:
        background.stop.set()
        background.wake.set()
        try:
            hand_over(background.settings, background.dispatcher)
        except Exception:  # the process is ending: the next deliverer finds the outbox as it is
            _log.warning("webhook_hand_over_failed", exc_info=True)


def stop_dispatchers() -> None:
    """Stop this process's background dispatchers (no hand-over) and forget their event logs."""
    for background in _running:
        background.stop.set()
        background.wake.set()
    _running.clear()
    event_log.cache_clear()
