"""Sensors: rows of build_requests become plan_build runs; failed (and not retried) or canceled
runs settle their build or request, builds whose process died end
failed, pending webhooks are handed to a deliverer, and stale approvals expire. All are on by
default, so `make dev` runs them. Dagster marks a tick that requested no run as skipped, so each
sensor says in its skip reason, and in the tick's log, what it did."""

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
from sheen_pipeline.defs.settings import SettingsResource
from sheen_pipeline.events.runtime import dispatcher_for, hand_over
from sheen_pipeline.runs.ended import free_pool_slots
from sheen_pipeline.runs.launch import will_be_retried
from sheen_pipeline.runs.requests import BATCH_SIZE, pending_run_requests
from sheen_pipeline.runs.stalled import end_stalled_builds
from sheen_pipeline.runs.tags import BUILD_ID, REQUEST_ID


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
        "When a run fails for good, marks its build (or, before planning, its request) failed; "
        "a run the instance's run_retries will re-execute is left to that retry, and a build "
        "a later run (a re-execution) has taken over is left to that run."
    ),
)
def failed_run_sensor(context: RunFailureSensorContext, sheen: BuildServiceResource) -> None:
    failed = context.dagster_run
    free_pool_slots(context.instance, failed.run_id)
    if will_be_retried(failed):
        context.log.info(f"run {failed.run_id} failed before its steps; Dagster retries it")
        return
    tags = failed.tags
    if BUILD_ID not in tags:
        return
    reason = f"{failed.job_name} run {failed.run_id} failed: {context.failure_event.message}"
    sheen.service.fail_build_or_request(tags[BUILD_ID], tags.get(REQUEST_ID), failed.run_id, reason)


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks the build (or its request) of a canceled run failed, with the reason.",
)
def canceled_run_sensor(context: RunStatusSensorContext, sheen: BuildServiceResource) -> None:
    canceled = context.dagster_run
    free_pool_slots(context.instance, canceled.run_id)
    if BUILD_ID in canceled.tags:
        reason = f"{canceled.job_name} run {canceled.run_id} was canceled"
        sheen.service.fail_build_or_request(
            canceled.tags[BUILD_ID], canceled.tags.get(REQUEST_ID), canceled.run_id, reason
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
    names = ", ".join(s.build_id for s in ended)
    return _report(context, f"ended {len(ended)} stalled builds: {names or '-'}", bool(ended))


@sensor(
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Hands pending webhook deliveries, whichever process emitted their events, to a "
        "background deliverer when no long-running one is alive, so the daemon alone gets "
        "everything delivered; the tick itself sends nothing. Off without SHEEN_WEBHOOK_URL."
    ),
)
def webhook_delivery_sensor(
    context: SensorEvaluationContext, settings: SettingsResource
) -> SkipReason:
    values = settings.get()
    if not values.webhooks.enabled:
        return SkipReason("webhooks are not configured")
    dispatcher = dispatcher_for(values)
    pending = dispatcher.counts().get("pending", 0)
    if hand_over(values, dispatcher):
        return _report(context, f"handed {pending} pending deliveries to a new deliverer", True)
    return SkipReason(f"{pending} pending deliveries; a deliverer is alive" if pending else "none")


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Ends builds whose plan waited for approval longer than SHEEN_PLAN_APPROVAL_TTL_S.",
)
def plan_approval_expiry_sensor(
    context: SensorEvaluationContext, sheen: BuildServiceResource
) -> SkipReason:
    expired = expire_stale(sheen.service)
    return _report(
        context, f"expired {len(expired)} plans: {', '.join(expired) or '-'}", bool(expired)
    )


def _report(context: SensorEvaluationContext, did: str, worked: bool) -> SkipReason:
    """What a tick did as its skip reason, and in its log (shown with the tick in the UI) when
    it did something. A `SensorResult` would not show it better: the daemon records every tick
    that requested no run as skipped (`dagster._daemon.sensor`), whatever the sensor returned."""
    if worked:
        context.log.info(did)
    return SkipReason(did)
