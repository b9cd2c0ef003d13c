"""Commands about one build or request: build, submit, status, approve, reject, promote, retry."""

from __future__ import annotations

import os
from datetime import datetime

import click

from sheen_pipeline.cli.app import (
    accepted,
    ensure_dagster_home,
    finish,
    load_settings,
    main,
    request_arguments,
)
from sheen_pipeline.config import Settings
from sheen_pipeline.models import BuildRequest
from sheen_pipeline.terminal import echo, printable


@main.command()
@request_arguments
@click.option(
    "--json", "as_json", is_flag=True, help="End with one JSON line describing the build."
)
def build(request: BuildRequest, as_json: bool) -> None:
    """Plan, build and deploy PROMPT; prints progress, then the preview URL."""
    settings = load_settings()
    ensure_dagster_home(settings)

    from dagster import DagsterInstance

    from sheen_pipeline.runs.local import run_build
    from sheen_pipeline.runs.pools import set_pool_limits
    from sheen_pipeline.service import BuildService

    def report(line: str) -> None:
        echo(line, err=as_json)

    service = BuildService(settings)
    request = accepted(service.accept, request)
    with DagsterInstance.get() as instance:
        set_pool_limits(instance, settings, only_missing=True)
        outcome = run_build(instance, service, request, report)
    finish(outcome, report, as_json)


@main.command()
@request_arguments
def submit(request: BuildRequest) -> None:
    """Queue PROMPT in build_requests; the build_requests_sensor (make dev) starts it."""
    from sheen_pipeline.models import new_build_id
    from sheen_pipeline.service import BuildService
    from sheen_pipeline.store.requests import RequestStore, new_request_id

    settings = load_settings()
    request = accepted(BuildService(settings).accept, request)
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

    settings = load_settings()
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

    ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        problem = daemon_problem(instance)
    if problem:
        echo(f"warning: {problem}", err=True)


def _echo_status(
    request_id: str, build_id: str, state: str, updated: datetime, prompt: str, error: str | None
) -> None:
    suffix = f"  {error}" if error else ""
    echo(
        f"{request_id}  {build_id}  {state:<17} {updated:%Y-%m-%d %H:%M:%S}  {prompt[:40]!r}{suffix}"
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

    settings = load_settings()
    ensure_dagster_home(settings)
    service = BuildService(settings)
    try:
        plan = approve_plan(service, build_id)
    except (ApprovalError, LookupError) as error:
        raise click.ClickException(printable(str(error))) from None
    with DagsterInstance.get() as instance:
        if here:
            finish(run_approved_build(instance, service, plan, echo), echo, as_json)
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
        reject_plan(BuildService(load_settings()), build_id, reason)
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
@click.option(
    "--force", is_flag=True, help="Promote it even though its browser checks did not run."
)
def promote(build_id: str, promoted_by: str, force: bool) -> None:
    """Make the succeeded build BUILD_ID its project's production version; promoting an older
    build is the rollback. Runs the promote_build job here, so the UI records it. A build whose
    preview was never checked in a browser is refused unless --force."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.promote import PromotionFailed, run_promotion
    from sheen_pipeline.store.builds import BuildStore, UnknownBuild
    from sheen_pipeline.store.deployments import DeploymentStore

    settings = load_settings()
    ensure_dagster_home(settings)
    try:
        project_id = BuildStore(settings.database_url).get_build(build_id).request.project_id
    except UnknownBuild:
        raise click.ClickException(f"no build {build_id}") from None
    with DagsterInstance.get() as instance:
        try:
            run_promotion(instance, build_id, promoted_by, force)
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

    settings = load_settings()
    ensure_dagster_home(settings)

    def report(line: str) -> None:
        echo(line, err=as_json)

    with DagsterInstance.get() as instance:
        try:
            outcome = retry_build(instance, BuildService(settings), build_id, report)
        except LookupError as error:
            raise click.ClickException(printable(str(error))) from None
    finish(outcome, report, as_json)


if __name__ == "__main__":
    main()
