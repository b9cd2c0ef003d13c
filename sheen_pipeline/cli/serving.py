"""`sheen serve`, `sheen events` and `sheen watch`: serving previews and the API, and following
builds."""

from __future__ import annotations

import json
import threading

import click

from sheen_pipeline.cli.app import ensure_dagster_home, load_settings, main
from sheen_pipeline.cli.stalled import STALLED_POLLS, end_if_stalled, end_stalled_builds_until
from sheen_pipeline.terminal import echo


@main.command()
@click.option("--host", default=None, help="Defaults to SHEEN_PREVIEW_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Defaults to SHEEN_PREVIEW_PORT (8787).")
def serve(host: str | None, port: int | None) -> None:
    """Serve previews under /p/<build_id>/ and the build API under /api/ until Ctrl-C; also
    delivers pending webhooks when they are configured, and ends builds whose process died."""

    import uvicorn

    from sheen_pipeline.api.app import create_app
    from sheen_pipeline.api.protocol import HeaderTimeoutProtocol

    settings = load_settings()
    host = host or settings.preview_host
    port = port or settings.preview_port
    stop = threading.Event()
    threading.Thread(
        target=end_stalled_builds_until, args=(settings, stop), name="sheen-stalled", daemon=True
    ).start()
    echo(f"Serving previews at http://{host}:{port}/p/<build_id>/ and the API at /api/")
    echo("Ctrl-C stops.")
    try:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level="warning",
            http=HeaderTimeoutProtocol,
        )
    finally:
        stop.set()


@main.command()
@click.argument("build_id")
@click.option("--follow", is_flag=True, help="Keep printing new events until the build ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events(build_id: str, follow: bool, as_json: bool) -> None:
    """Print the events of BUILD_ID."""
    import time

    from sheen_pipeline.events.payloads import describe
    from sheen_pipeline.events.runtime import stored_events
    from sheen_pipeline.events.types import TERMINAL_TYPES
    from sheen_pipeline.store.builds import BuildStore, UnknownBuild
    from sheen_pipeline.store.requests import RequestStore

    settings = load_settings()
    log = stored_events(settings)
    if follow and RequestStore(settings.database_url).find(build_id) is None:
        try:
            BuildStore(settings.database_url).get_build(build_id)
        except UnknownBuild:
            raise click.ClickException(f"no build {build_id}") from None
    cursor, polls = 0, 0
    while True:
        if follow and polls % STALLED_POLLS == 0:
            end_if_stalled(settings, build_id)  # its build_failed ends the loop below
        polls += 1
        batch = log.after(build_id, cursor)
        for event in batch:
            cursor = event.seq
            line = (
                json.dumps(event.payload())
                if as_json
                else (f"{event.seq:>6} {event.timestamp:%H:%M:%S} {describe(event)}")
            )
            echo(line)
            if event.type in TERMINAL_TYPES and follow:
                return
        if not follow:
            if cursor == 0:
                raise click.ClickException(f"no events for build {build_id}")
            return
        time.sleep(0.5)


@main.command()
@click.option("--poll-s", type=float, default=5.0, show_default=True)
def watch(poll_s: float) -> None:
    """Beside `dagster dev` (make dev runs it): show new build jobs in the UI with one reload per
    SHEEN_UI_RELOAD_INTERVAL_S, and warn when the Dagster daemon stops heartbeating."""
    import time

    from dagster import DagsterInstance

    from sheen_pipeline.runs.watch import UiWatch
    from sheen_pipeline.store.builds import BuildStore

    settings = load_settings()
    ensure_dagster_home(settings)
    store = BuildStore(settings.database_url)
    with DagsterInstance.get() as instance:
        ui = UiWatch(
            instance,
            store.plan_count,
            settings.dagster_webserver_url,
            settings.ui_reload_interval_s,
            lambda line: echo(f"sheen watch: {line}", err=True),
        )
        while True:
            ui.step(time.monotonic())
            time.sleep(poll_s)
