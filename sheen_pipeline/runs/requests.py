"""Rows of build_requests as run requests of plan_build: one per row, keyed by the request id,
with the row's build id; a row that is not a valid request is failed instead."""

from __future__ import annotations

from datetime import datetime, timedelta

from dagster import RunRequest

from sheen_pipeline.models import (
    BuildRequest,
    InvalidRequest,
    parse_build_id,
    parse_build_request,
)
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
    if request.prompt != row.prompt:
        store.replace_prompt(row.request_id, request.prompt)
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
