"""The `sheen` command: run builds and serve previews from a terminal."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.logs import configure_logging
from sheen_pipeline.models import BuildRequest, InvalidRequest, parse_build_request
from sheen_pipeline.terminal import echo, printable

STALLED_CHECK_S = 15.0
STALLED_POLLS = 10  # `events --follow` polls every 0.5 s and looks for a dead build every 5 s

if TYPE_CHECKING:
    import threading

    from sheen_pipeline.events.delivery import WebhookDispatcher
    from sheen_pipeline.runs.local import BuildOutcome


def _ensure_dagster_home(settings: Settings) -> None:
    """Use DAGSTER_HOME when set; else this folder's dagster.yaml; else SHEEN_HOME/dagster.
    Its storage is initialised once, whichever command comes first."""
    if not os.environ.get("DAGSTER_HOME"):
        home = Path.cwd() if Path("dagster.yaml").is_file() else settings.home / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        instance_config = home / "dagster.yaml"
        if not instance_config.exists():
            instance_config.write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(home.resolve())
    _initialise_storage_once(Path(os.environ["DAGSTER_HOME"]))


def _initialise_storage_once(home: Path) -> None:
    """Dagster creates and migrates its storage on first open; two commands doing that at once
    (`sheen serve` and `sheen build` on a fresh home) left the schedule database with two
    alembic heads. The first open happens under a lock, and is remembered."""
    import fcntl

    from dagster import DagsterInstance

    ready = home / ".sheen-storage-ready"
    if ready.exists():
        return
    with open(home / ".sheen-storage.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return
        with DagsterInstance.get() as instance:
            instance.run_storage.get_runs(limit=1)
            instance.event_log_storage.get_logs_for_run("none", limit=1)
            instance.schedule_storage.all_instigator_state()  # type: ignore[union-attr]
        ready.touch()


def _settings() -> Settings:
    """The settings, checked before anything starts; an error names the variable."""
    from sheen_pipeline.budgets import load_budgets
    from sheen_pipeline.providers.pricing import load_prices

    try:
        settings = Settings.from_env()
        load_prices(settings.prices)
        load_budgets(settings.budgets)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    configure_logging(settings.secrets)
    return settings


@click.group()
def main() -> None:
    """sheen: turn a prompt into a planned, built and previewed site, on Dagster."""


def request_arguments(command: Callable[..., None]) -> Callable[..., None]:
    """PROMPT and the request options, validated into one BuildRequest argument `request`."""

    def to_request(**values: object) -> None:
        fields = {name: values.pop(name) for name in BuildRequest.model_fields}
        try:
            request = parse_build_request(**fields)
        except InvalidRequest as error:
            raise click.UsageError(f"invalid build request: {error}") from None
        command(request=request, **values)

    functools.update_wrapper(to_request, command)  # name, help, and options declared below
    for name, field in reversed(BuildRequest.model_fields.items()):
        if field.is_required():
            to_request = click.argument(name)(to_request)
            continue
        choices = BuildRequest.choices(name)
        to_request = click.option(
            "--" + name.replace("_", "-"),
            type=click.Choice(choices) if choices else str,
            default=field.default,
            show_default=field.default is not None,
            help=field.description,
        )(to_request)
    return to_request


@main.command()
@request_arguments
@click.option(
    "--json", "as_json", is_flag=True, help="End with one JSON line describing the build."
)
def build(request: BuildRequest, as_json: bool) -> None:
    """Plan, build and deploy PROMPT; prints progress, then the preview URL."""
    settings = _settings()
    _ensure_dagster_home(settings)

    from dagster import DagsterInstance

    from sheen_pipeline.runs.local import run_build
    from sheen_pipeline.runs.pools import set_pool_limits
    from sheen_pipeline.service import BuildService

    def report(line: str) -> None:
        echo(line, err=as_json)

    with DagsterInstance.get() as instance:
        set_pool_limits(instance, settings, only_missing=True)
        outcome = run_build(instance, BuildService(settings), request, report)
    _finish(outcome, report, as_json)


def _finish(outcome: BuildOutcome, report: Callable[[str], None], as_json: bool) -> NoReturn:
    """Last lines and exit code: 0 succeeded, 3 waiting for approval, 4 blocked, 1 failed."""
    if outcome.status == "succeeded":
        report(f"build {outcome.build_id} succeeded: {len(outcome.files)} files")
        report(f"preview: {outcome.preview_url}")
    elif outcome.status == "awaiting_approval":
        report(f"build {outcome.build_id} awaits approval: sheen approve {outcome.build_id}")
    elif outcome.status == "blocked":
        report(f"build {outcome.build_id} is blocked: {outcome.error}")
    else:
        report(f"build {outcome.build_id} failed: {outcome.error}")
    if as_json:
        echo(json.dumps(outcome.as_json()))
    sys.exit({"succeeded": 0, "awaiting_approval": 3, "blocked": 4}.get(outcome.status, 1))


@main.command()
@click.option("--host", default=None, help="Defaults to SHEEN_PREVIEW_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Defaults to SHEEN_PREVIEW_PORT (8787).")
def serve(host: str | None, port: int | None) -> None:
    """Serve previews under /p/<build_id>/ and the build API under /api/ until Ctrl-C; also
    delivers pending webhooks when they are configured, and ends builds whose process died."""
    import threading

    import uvicorn

    from sheen_pipeline.api.app import create_app
    from sheen_pipeline.api.protocol import HeaderTimeoutProtocol

    settings = _settings()
    host = host or settings.preview_host
    port = port or settings.preview_port
    stop = threading.Event()
    threading.Thread(
        target=_end_stalled_builds_until, args=(settings, stop), name="sheen-stalled", daemon=True
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


def _end_stalled_builds_until(settings: Settings, stop: threading.Event) -> None:
    """What the daemon's stalled_build_sensor does, for setups that run `sheen serve` alone."""
    interval_s = min(STALLED_CHECK_S, settings.build_heartbeat_timeout_s / 2)
    with _stalled_build_ender(settings) as end_stalled:
        while not stop.wait(interval_s):
            try:
                end_stalled(None)
            except Exception:  # a database hiccup: try again next time
                logging.getLogger(__name__).exception("ending stalled builds failed")


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

    settings = _settings()
    log = stored_events(settings)
    if follow and RequestStore(settings.database_url).find(build_id) is None:
        try:
            BuildStore(settings.database_url).get_build(build_id)
        except UnknownBuild:
            raise click.ClickException(f"no build {build_id}") from None
    cursor, polls = 0, 0
    while True:
        if follow and polls % STALLED_POLLS == 0:
            _end_if_stalled(settings, build_id)  # its build_failed ends the loop below
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


def _end_if_stalled(settings: Settings, build_id: str) -> None:
    """A follower of a build whose process died ends it rather than wait forever, even where
    no `sheen serve` or daemon runs."""
    import time

    from sheen_pipeline.store.builds import BuildStore

    cutoff = time.time() - settings.build_heartbeat_timeout_s
    if any(stalled[0] == build_id for stalled in BuildStore(settings.database_url).stalled(cutoff)):
        with _stalled_build_ender(settings) as end_stalled:
            end_stalled(build_id)


@contextmanager
def _stalled_build_ender(settings: Settings) -> Iterator[Callable[[str | None], object]]:
    """Ends stalled builds (all, or one) and marks their runs, on the instance `sheen build`
    runs in; the service and the instance are made once and the instance closed after."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.stalled import end_stalled_builds
    from sheen_pipeline.service import BuildService

    _ensure_dagster_home(settings)
    service = BuildService(settings)
    with DagsterInstance.get() as instance:
        yield lambda build_id: end_stalled_builds(service, instance, build_id)


@main.group()
def webhooks() -> None:
    """Webhook deliveries: status and redelivery of dead ones."""


def _dispatcher() -> WebhookDispatcher:
    from sheen_pipeline.events.runtime import dispatcher_for

    settings = _settings()
    if not settings.webhooks.enabled:
        raise click.UsageError("set SHEEN_WEBHOOK_URL and SHEEN_WEBHOOK_SECRET first")
    return dispatcher_for(settings)


@webhooks.command("status")
@click.option("--build-id", default=None)
def webhooks_status(build_id: str | None) -> None:
    """The receiver's state (enabled, failing, disabled by a 410) and deliveries by state."""
    from datetime import UTC, datetime

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
    next_in = dispatcher.outbox.next_wake_in()
    if next_in is not None:
        echo(f"next attempt in: {next_in:.1f} s")


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
    import threading

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
    """Send dead deliveries again, in their original order, with a fresh schedule."""
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
    if hand_over(_settings(), dispatcher):
        echo("the rest is sent by a background deliverer (log: SHEEN_HOME/webhook-deliverer.log)")


@main.command()
def init() -> None:
    """Create the app tables and set the concurrency pool limits (plan, llm) on the instance."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.pools import set_pool_limits
    from sheen_pipeline.store.builds import engine_for

    settings = _settings()
    engine_for(settings.database_url)
    _ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        applied = set_pool_limits(instance, settings, only_missing=False)
    echo("pools: " + ", ".join(f"{pool}={limit}" for pool, limit in applied.items()))


@main.command()
@request_arguments
def submit(request: BuildRequest) -> None:
    """Queue PROMPT in build_requests; the build_requests_sensor (make dev) starts it."""
    from sheen_pipeline.models import new_build_id
    from sheen_pipeline.store.requests import RequestStore, new_request_id

    settings = _settings()
    record = RequestStore(settings.database_url).add(request, new_request_id(), new_build_id())
    echo(f"request {record.request_id} queued as build {record.build_id}")


@main.command()
@click.argument("request_or_build_id", required=False)
@click.option("--limit", type=int, default=20, show_default=True)
def status(request_or_build_id: str | None, limit: int) -> None:
    """Show build requests and where they are (pending, planning, awaiting_approval, blocked,
    building, succeeded, failed); with an id, also a build started without a request (`sheen build`)."""
    from sheen_pipeline.store.builds import BuildStore, UnknownBuild
    from sheen_pipeline.store.requests import RequestStore

    settings = _settings()
    store = RequestStore(settings.database_url)
    if not request_or_build_id:
        records = store.recent(limit)
    elif (found := store.find(request_or_build_id)) is not None:
        records = [found]
    else:
        try:
            build = BuildStore(settings.database_url).get_build(request_or_build_id)
        except UnknownBuild:
            raise click.ClickException(f"no request or build {request_or_build_id}") from None
        _echo_status(
            "-", build.build_id, build.status, build.updated_at, build.request.prompt, build.error
        )
        return
    for r in records:
        _echo_status(r.request_id, r.build_id, r.status, r.updated_at, r.prompt, r.error)
    _warn_about_daemon(settings)


def _warn_about_daemon(settings: Settings) -> None:
    """Requests move only while the Dagster daemon runs: say so when it has gone quiet."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.watch import daemon_problem

    _ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        problem = daemon_problem(instance)
    if problem:
        echo(f"warning: {problem}", err=True)


@main.command()
@click.option("--poll-s", type=float, default=5.0, show_default=True)
def watch(poll_s: float) -> None:
    """Beside `dagster dev` (make dev runs it): show new build jobs in the UI with one reload per
    SHEEN_UI_RELOAD_INTERVAL_S, and warn when the Dagster daemon stops heartbeating."""
    import time

    from dagster import DagsterInstance

    from sheen_pipeline.runs.watch import UiWatch
    from sheen_pipeline.store.builds import BuildStore

    settings = _settings()
    _ensure_dagster_home(settings)
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


def _echo_status(
    request_id: str, build_id: str, state: str, updated: datetime, prompt: str, error: str | None
) -> None:
    suffix = f"  {error}" if error else ""
    echo(
        f"{request_id}  {build_id}  {state:<17} {updated:%Y-%m-%d %H:%M:%S}  {prompt[:40]!r}{suffix}"
    )


def _since(value: str) -> datetime:
    """`7d` (days back from now) or a date (`2026-11-01`, UTC midnight)."""
    from datetime import UTC, timedelta

    if value.endswith("d") and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(days=int(value[:-1]))
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use a number of days (7d) or a date") from None


@main.command()
@click.option("--since", default="7d", show_default=True, help="Days back (7d) or a date.")
@click.option(
    "--by",
    type=click.Choice(["day", "project", "user", "model"]),
    default="day",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Every grouping as one JSON object.")
def costs(since: str, by: str, as_json: bool) -> None:
    """What builds cost since --since (every paid call, failed builds' included) and what the
    caches saved; the same figures as the sheen/costs/daily asset."""
    from datetime import UTC

    from sheen_pipeline.costs import COLUMNS, by_cost, cells, cost_report
    from sheen_pipeline.providers.pricing import load_prices
    from sheen_pipeline.store.builds import BuildStore
    from sheen_pipeline.store.ledger import Ledger

    settings = _settings()  # only reads: no service, so no webhook dispatcher starts
    url = settings.database_url
    prices = load_prices(settings.prices)
    report = cost_report(Ledger(url), BuildStore(url), prices, _since(since), datetime.now(UTC))
    if as_json:
        echo(json.dumps(report.as_json()))
        return
    rows = [(name, *cells(f)) for name, f in by_cost(report.groups[by])]
    rows.append(("total", *cells(report.totals)))
    header = (by, *COLUMNS)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        echo(
            "  ".join(
                str(cell).rjust(w) if i else str(cell).ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    echo(
        f"builds: {report.builds_succeeded} succeeded, {report.builds_failed} failed; "
        f"prompt cache saved ${report.totals.prompt_cache_saved_usd:.4f}, "
        f"result cache saved ${report.totals.result_cache_saved_usd:.4f}"
    )


@main.command()
@click.argument("build_id")
@click.option("--here", is_flag=True, help="Run the build in this process instead of the queue.")
@click.option("--json", "as_json", is_flag=True)
def approve(build_id: str, here: bool, as_json: bool) -> None:
    """Approve a planned build: its job is queued (or, with --here, run now)."""
    from dagster import DagsterInstance

    from sheen_pipeline.approval import ApprovalError
    from sheen_pipeline.approval import approve as approve_plan
    from sheen_pipeline.runs.launch import launch_build_run
    from sheen_pipeline.runs.local import run_approved_build
    from sheen_pipeline.service import BuildService

    settings = _settings()
    _ensure_dagster_home(settings)
    service = BuildService(settings)
    try:
        plan = approve_plan(service, build_id)
    except (ApprovalError, LookupError) as error:
        raise click.ClickException(printable(str(error))) from None
    with DagsterInstance.get() as instance:
        if here:
            _finish(run_approved_build(instance, service, plan, echo), echo, as_json)
        run = launch_build_run(instance, build_id)
    echo(f"approved: run {run.run_id} of {run.job_name} queued")


@main.command()
@click.argument("build_id")
@click.option("--reason", default="rejected by an operator", show_default=True)
def reject(build_id: str, reason: str) -> None:
    """Reject a planned build: it ends with build_failed."""
    from sheen_pipeline.approval import ApprovalError
    from sheen_pipeline.approval import reject as reject_plan
    from sheen_pipeline.service import BuildService

    try:
        reject_plan(BuildService(_settings()), build_id, reason)
    except (ApprovalError, LookupError) as error:
        raise click.ClickException(printable(str(error))) from None
    echo(f"rejected build {build_id}")


@main.command()
@click.argument("build_id")
@click.option(
    "--by",
    "promoted_by",
    default=lambda: os.environ.get("USER") or "cli",
    show_default="$USER",
    help="Who promotes it, for the record.",
)
def promote(build_id: str, promoted_by: str) -> None:
    """Make the succeeded build BUILD_ID its project's production version; promoting an older
    build is the rollback. Runs the promote_build job here, so the UI records it."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.promote import PromotionFailed, run_promotion
    from sheen_pipeline.store.builds import BuildStore, UnknownBuild
    from sheen_pipeline.store.deployments import DeploymentStore

    settings = _settings()
    _ensure_dagster_home(settings)
    try:
        project_id = BuildStore(settings.database_url).get_build(build_id).request.project_id
    except UnknownBuild:
        raise click.ClickException(f"no build {build_id}") from None
    with DagsterInstance.get() as instance:
        try:
            run_promotion(instance, build_id, promoted_by)
        except PromotionFailed as failed:
            raise click.ClickException(str(failed)) from None
    live = DeploymentStore(settings.database_url).production(project_id)
    assert live is not None and live.build_id == build_id
    echo(f"build {build_id} is the production of {project_id}: {live.url}")


@main.command()
@click.argument("build_id")
@click.option(
    "--json", "as_json", is_flag=True, help="End with one JSON line describing the build."
)
def retry(build_id: str, as_json: bool) -> None:
    """Re-execute the latest run of BUILD_ID from failure: only failed and not-yet-run tasks run
    again; succeeded tasks are reused from their stored outputs."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.local import retry_build
    from sheen_pipeline.service import BuildService

    settings = _settings()
    _ensure_dagster_home(settings)

    def report(line: str) -> None:
        echo(line, err=as_json)

    with DagsterInstance.get() as instance:
        try:
            outcome = retry_build(instance, BuildService(settings), build_id, report)
        except LookupError as error:
            raise click.ClickException(printable(str(error))) from None
    _finish(outcome, report, as_json)


if __name__ == "__main__":
    main()
