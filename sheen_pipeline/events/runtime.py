"""One event log per process, with a background webhook dispatcher when webhooks are set."""

from __future__ import annotations

import atexit
import threading
import time
from functools import cache

from sheen_pipeline.config import Settings
from sheen_pipeline.events.delivery import WebhookDispatcher
from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.types import BuildEvent
from sheen_pipeline.logs import get_logger
from sheen_pipeline.store.builds import engine_for

EXIT_FLUSH_S = 2.0
_log = get_logger("sheen_pipeline.events")
_stops: list[threading.Event] = []


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
    left pending in the outbox for the next dispatcher (`sheen serve` runs one)."""
    events = stored_events(settings)
    events.add_listener(_log_event)
    if not settings.webhooks.enabled:
        return events
    wake, stop = threading.Event(), threading.Event()
    events.add_listener(lambda _event: wake.set())
    dispatcher = dispatcher_for(settings, events)
    threading.Thread(
        target=dispatcher.run, args=(stop, wake), name="sheen-webhooks", daemon=True
    ).start()
    atexit.register(_flush_then_stop, dispatcher, stop, wake)
    _stops.append(stop)
    return events


def _log_event(event: BuildEvent) -> None:
    """Every event is also a structured log line, with the build and task it concerns."""
    task_id = event.data.get("task_id")
    _log.info(
        event.type.value,
        build_id=event.build_id,
        seq=event.seq,
        **({"task_id": task_id} if task_id else {}),
    )


def _flush_then_stop(
    dispatcher: WebhookDispatcher, stop: threading.Event, wake: threading.Event
) -> None:
    """Give deliveries that are due a moment to go out before the process ends."""
    deadline = time.monotonic() + EXIT_FLUSH_S
    while time.monotonic() < deadline and dispatcher.next_due_in() == 0.0:
        wake.set()
        time.sleep(0.05)
    stop.set()
    wake.set()


def stop_dispatchers() -> None:
    """Stop this process's background dispatchers and forget their event logs."""
    for stop in _stops:
        stop.set()
    _stops.clear()
    event_log.cache_clear()
