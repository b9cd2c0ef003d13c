"""Sensors: rows of build_requests become plan_build runs; runs that failed to launch are launched
again, failed plan runs settle their request, and stale approvals expire. All are on by default,
so `make dev` runs them."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from sheen_pipeline.approval import expire_stale
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.resources import BuildServiceResource
from sheen_pipeline.models import (
    BuildRequest,
    InvalidRequest,
    parse_build_id,
    parse_build_request,
)
from sheen_pipeline.runs.launch import relaunch
from sheen_pipeline.runs.tags import BUILD_ID, PROJECT_ID, REQUEST_ID, USER_ID
from sheen_pipeline.store.requests import RequestRecord, RequestStore

BATCH_SIZE = 100
STRAGGLER_AGE_S = 60


def plan_run_config(build_id: str, request: BuildRequest) -> dict[str, object]:
    return {"ops": {"validate_request": {"config": {**request.model_dump(), "build_id": build_id}}}}


def request_tags(request_id: str, build_id: str, request: BuildRequest) -> dict[str, str]:
    return {
        REQUEST_ID: request_id,
        BUILD_ID: build_id,
        PROJECT_ID: request.project_id,
        USER_ID: request.user_id,
    }


def _run_request(store: RequestStore, row: RequestRecord) -> RunRequest | None:
    """A RunRequest keyed by the request id (Dagster never starts two runs for one key);
    a row that fails validation is marked failed instead."""
    try:
        request = parse_build_request(**row.fields)
        parse_build_id(row.build_id)
    except InvalidRequest as error:
        store.fail(row.request_id, f"invalid build request: {error}")
        return None
    return RunRequest(
        run_key=row.request_id,
        run_config=plan_run_config(row.build_id, request),
        tags=request_tags(row.request_id, row.build_id, request),
    )


def pending_run_requests(
    store: RequestStore, cursor: int, batch_size: int, now: datetime
) -> tuple[list[RunRequest], int]:
    """At most batch_size new rows past the cursor, plus a few older pending rows the cursor
    may have passed (their run keys make repeats harmless); returns the new cursor."""
    rows = store.pending_after(cursor, batch_size)
    stragglers = store.pending_before(cursor, now - timedelta(seconds=STRAGGLER_AGE_S), 10)
    requests = [r for row in [*stragglers, *rows] if (r := _run_request(store, row)) is not None]
    return requests, max([cursor, *(row.seq for row in rows)])


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
