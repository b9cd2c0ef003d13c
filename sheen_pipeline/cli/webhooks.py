"""`sheen webhooks`: the receiver's state, enabling it again, delivering, redelivering."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

import click

from sheen_pipeline.cli.app import load_settings, main
from sheen_pipeline.terminal import echo

if TYPE_CHECKING:
    from sheen_pipeline.events.delivery import WebhookDispatcher
    from sheen_pipeline.events.outbox import EndpointHealth


@main.group()
def webhooks() -> None:
    """Webhook deliveries: status and redelivery of dead ones."""


def _dispatcher() -> WebhookDispatcher:
    from sheen_pipeline.events.runtime import dispatcher_for

    settings = load_settings()
    if not settings.webhooks.enabled:
        raise click.UsageError("set SHEEN_WEBHOOK_URL and SHEEN_WEBHOOK_SECRET first")
    return dispatcher_for(settings)


@webhooks.command("status")
@click.option("--build-id", default=None)
def webhooks_status(build_id: str | None) -> None:
    """The receiver's state (enabled, failing, disabled by a 410) and deliveries by state."""
    from datetime import UTC

    dispatcher = _dispatcher()
    health = dispatcher.outbox.health()

    def when(moment: float | None) -> str:
        return "-" if not moment else f"{datetime.fromtimestamp(moment, UTC):%Y-%m-%d %H:%M:%S} UTC"

    if health.disabled_at is not None:
        endpoint = f"disabled since {when(health.disabled_at)} ({health.disabled_reason}); "
        endpoint += "`sheen webhooks enable` resumes"
    elif health.failing_since is not None:
        endpoint = f"failing since {when(health.failing_since)}"
    else:
        endpoint = "enabled"
    echo(f"endpoint: {endpoint}")
    echo(f"last success: {when(health.last_success_at)}")
    counts = dispatcher.counts(build_id)
    for state in ("pending", "delivered", "dead"):
        echo(f"{state}: {counts.get(state, 0)}")
    lags = dispatcher.outbox.lags(build_id)
    if lags:
        cuts = statistics.quantiles(lags, n=20, method="inclusive") if len(lags) > 1 else lags * 19
        p50, p95 = cuts[9], cuts[18]
        echo(f"lag (stored to delivered, last {len(lags)}): p50 {p50:.1f} s, p95 {p95:.1f} s")
    next_in = dispatcher.outbox.next_wake_in()
    if next_in is not None:
        echo(f"next attempt in: {next_in:.1f} s, by {_who_delivers(health)}")


def _who_delivers(health: EndpointHealth) -> str:
    from sheen_pipeline.events.outbox import DELIVERER_ALIVE_S

    seen = time.time() - health.deliverer_seen_at
    if seen < DELIVERER_ALIVE_S:
        return f"the deliverer that was alive {seen:.0f} s ago"
    return (
        "whichever comes first: `sheen serve`, the Dagster daemon's webhook sensor, or the "
        "next `sheen` command (none is delivering now)"
    )


@webhooks.command("enable")
def webhooks_enable() -> None:
    """Take deliveries again after the receiver answered 410 Gone; waiting ones go at once."""
    _dispatcher().outbox.enable()
    echo("endpoint enabled")


@webhooks.command("deliver")
@click.option("--until-idle", is_flag=True, help="Exit once nothing is left to send.")
def webhooks_deliver(until_idle: bool) -> None:
    """Deliver pending webhooks in the foreground until Ctrl-C (what `sheen serve` and the
    daemon also do); short-lived commands start one with --until-idle when no deliverer runs."""

    stop = threading.Event()
    try:
        _dispatcher().run(stop, threading.Event(), long_running=True, until_idle=until_idle)
    except KeyboardInterrupt:
        stop.set()


@webhooks.command("redeliver")
@click.option("--build-id", default=None, help="Only this build's dead deliveries.")
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to keep delivering before handing the rest over.",
)
def webhooks_redeliver(build_id: str | None, wait_s: float) -> None:
    """Send dead deliveries again, with a fresh schedule."""
    import time

    from sheen_pipeline.events.runtime import hand_over

    dispatcher = _dispatcher()
    echo(f"{dispatcher.redeliver(build_id)} deliveries queued again")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        dispatcher.deliver_due()
        due = dispatcher.outbox.next_wake_in()
        if due is None or due > deadline - time.monotonic():
            break
        time.sleep(max(due, 0.05))
    counts = dispatcher.counts(build_id)
    echo(
        ", ".join(f"{state}: {counts.get(state, 0)}" for state in ("pending", "delivered", "dead"))
    )
    if hand_over(load_settings(), dispatcher):
        echo("the rest is sent by a background deliverer (log: SHEEN_HOME/webhook-deliverer.log)")
