"""Sensors: rows of build_requests become plan_build runs; runs that failed to launch are launched
again, failed or canceled runs settle their build or request, builds whose process died end
failed, due webhooks are sent, and stale approvals expire. All are on by default, so `make dev` runs them."""

from collections.abc import Iterator
from datetime import UTC, datetime

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from sheen_pipeline.approval import expire_stale
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.resources import BuildServiceResource
from sheen_pipeline.events.runtime import dispatcher_for
from sheen_pipeline.runs.launch import relaunch
from sheen_pipeline.runs.requests import BATCH_SIZE, pending_run_requests
from sheen_pipeline.runs.stalled import end_stalled_builds
from sheen_pipeline.runs.tags import BUILD_ID, REQUEST_ID

DELIVERY_BUDGET_S = 20.0  # well inside the daemon's 60 s limit on one sensor evaluation


@sensor(
    job=plan_build,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Turns new rows of build_requests into plan_build runs, one run per row.",
)
def build_requests_sensor(
    context: SensorEvaluationContext, sheen: BuildServiceResource
) -> Iterator[RunRequest | SkipReason]:
    store = sheen.service.requests
    cursor = int(context.cursor or 0)
    requests, new_cursor = pending_run_requests(store, cursor, BATCH_SIZE, datetime.now(UTC))
    context.update_cursor(str(new_cursor))
    if not requests:
        yield SkipReason(f"no pending build requests after {new_cursor}")
    yield from requests


@run_failure_sensor(
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Launches again a run that failed before it started (for example while its code server "
        "restarted); when a run fails for good, marks its build (or, before planning, its "
        "request) failed."
    ),
)
def failed_run_sensor(context: RunFailureSensorContext, sheen: BuildServiceResource) -> None:
    failed = context.dagster_run
    again = relaunch(context.instance, failed)
    if again is not None:
        context.log.info(f"run {failed.run_id} never started; launched again as {again.run_id}")
        return
    tags = failed.tags
    if BUILD_ID not in tags:
        return
    reason = f"{failed.job_name} run {failed.run_id} failed: {context.failure_event.message}"
    sheen.service.fail_build_or_request(tags[BUILD_ID], tags.get(REQUEST_ID), reason)


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks the build (or its request) of a canceled run failed, with the reason.",
)
def canceled_run_sensor(context: RunStatusSensorContext, sheen: BuildServiceResource) -> None:
    canceled = context.dagster_run
    if BUILD_ID in canceled.tags:
        reason = f"{canceled.job_name} run {canceled.run_id} was canceled"
        sheen.service.fail_build_or_request(
            canceled.tags[BUILD_ID], canceled.tags.get(REQUEST_ID), reason
        )


@sensor(
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Fails builds whose process stopped beating (killed, machine lost) for over "
        "SHEEN_BUILD_HEARTBEAT_TIMEOUT_S, and their runs, so no build stays building forever."
    ),
)
def stalled_build_sensor(
    context: SensorEvaluationContext, sheen: BuildServiceResource
) -> SkipReason:
    ended = end_stalled_builds(sheen.service, context.instance)
    return SkipReason(
        f"ended {len(ended)} stalled builds: {', '.join(s.build_id for s in ended) or '-'}"
    )


@sensor(
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Sends webhook deliveries that are due, whichever process emitted their events, so the "
        "daemon alone delivers everything; does nothing without SHEEN_WEBHOOK_URL."
    ),
)
def webhook_delivery_sensor(
    _context: SensorEvaluationContext, sheen: BuildServiceResource
) -> SkipReason:
    settings = sheen.settings()
    if not settings.webhooks.enabled:
        return SkipReason("webhooks are not configured")
    dispatcher = dispatcher_for(settings)
    dispatcher.outbox.mark_deliverer_alive()
    sent = dispatcher.drain(DELIVERY_BUDGET_S)
    return SkipReason(f"sent {sent} due webhook deliveries")


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Ends builds whose plan waited for approval longer than SHEEN_PLAN_APPROVAL_TTL_S.",
)
def plan_approval_expiry_sensor(
    _context: SensorEvaluationContext, sheen: BuildServiceResource
) -> SkipReason:
    expired = expire_stale(sheen.service)
    return SkipReason(f"expired {len(expired)} plans: {', '.join(expired) or '-'}")
