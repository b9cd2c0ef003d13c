"""build_requests_sensor and failed_run_sensor against a real database (SQLite and
Postgres), evaluated the way the daemon does, tick by tick, with the cursor it stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
)
from sqlalchemy import update

from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.sensors import build_requests_sensor
from sheen_pipeline.models import new_build_id, parse_build_request
from sheen_pipeline.runs.tags import BUILD_ID, REQUEST_ID
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.requests import RequestRecord, RequestStore, new_request_id
from sheen_pipeline.store.tables import build_requests
from tests.support.sensors import evaluate_failed_run_sensor, resources


def add_rows(
    store: RequestStore, count: int, prompt: str = "a blog about tea"
) -> list[RequestRecord]:
    request = parse_build_request(prompt=prompt, user_id="u1")
    return [store.add(request, new_request_id(), new_build_id()) for _ in range(count)]


def tick(instance: DagsterInstance, cursor: str | None) -> tuple[list[RunRequest], str | None]:
    """One evaluation, as the daemon runs it; returns the run requests and the stored cursor."""
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources()) as context:
        results = list(build_requests_sensor(context))
    requests = [r for r in results if isinstance(r, RunRequest)]
    assert requests or any(isinstance(r, SkipReason) for r in results)
    return requests, context.cursor


def test_one_run_request_per_new_row_and_none_on_repeat(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    rows = add_rows(store, 3)
    requests, cursor = tick(instance, None)
    assert [r.run_key for r in requests] == [row.request_id for row in rows]
    first = requests[0]
    assert first.tags[BUILD_ID] == rows[0].build_id and first.tags[REQUEST_ID] == rows[0].request_id
    config = first.run_config["ops"]["validate_request"]["config"]
    assert config == {
        "prompt": "a blog about tea",
        "project_id": "default",
        "user_id": "u1",
        "framework": None,
        "base_build_id": None,
        "build_id": rows[0].build_id,
    }
    again, cursor_again = tick(instance, cursor)
    assert again == [] and cursor_again == cursor


def test_cursor_survives_a_restart(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    add_rows(store, 2)
    _, cursor = tick(instance, None)
    (late,) = add_rows(store, 1)
    # A new daemon process: a fresh context that only has the stored cursor string.
    requests, _ = tick(instance, cursor)
    assert [r.run_key for r in requests] == [late.request_id]


def test_a_burst_of_1000_rows_drains_in_bounded_ticks(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    rows = add_rows(store, 1000)
    cursor: str | None = None
    seen: list[str] = []
    for _ in range(10):
        requests, cursor = tick(instance, cursor)
        assert len(requests) == 100
        seen += [r.run_key or "" for r in requests]
    assert seen == [row.request_id for row in rows]
    assert tick(instance, cursor)[0] == []


@pytest.mark.parametrize(
    ("column", "value"), [("user_id", "../x"), ("build_id", "c2a b0000"), ("build_id", "-x")]
)
def test_invalid_rows_are_failed_not_launched(
    db_service: BuildService,
    instance: DagsterInstance,
    database_url: str,
    column: str,
    value: str,
) -> None:
    store = RequestStore(database_url)
    bad, good = add_rows(store, 2)
    with store.engine.begin() as conn:  # the main app inserted a row the API would refuse
        conn.execute(
            update(build_requests).where(build_requests.c.seq == bad.seq).values({column: value})
        )
    requests, _ = tick(instance, None)
    assert [r.run_key for r in requests] == [good.request_id]
    failed = store.find(bad.request_id)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and f"{column}: may contain only letters" in failed.error


def test_a_row_with_a_control_character_fails_and_a_typed_in_key_is_redacted(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    nul, key = add_rows(store, 2)
    with store.engine.begin() as conn:  # what the main app inserted, unchecked
        for row, prompt in (
            (nul, "a site\x07 with a bell"),
            (key, "a site; key sk-ant-api03-secret123456"),
        ):
            conn.execute(
                update(build_requests).where(build_requests.c.seq == row.seq).values(prompt=prompt)
            )
    requests, _ = tick(instance, None)
    assert [r.run_key for r in requests] == [key.request_id]
    failed = store.find(nul.request_id)
    assert failed is not None and failed.status == "failed"
    assert "prompt: must not contain control characters (U+0007" in (failed.error or "")
    launched = store.find(key.request_id)
    assert launched is not None and "sk-ant" not in launched.prompt  # the row, redacted
    config = requests[0].run_config["ops"]["validate_request"]["config"]
    assert "sk-ant" not in config["prompt"] and "[REDACTED]" in config["prompt"]  # and the run


def test_rows_with_dashed_and_uuid_build_ids_are_launched(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    request = parse_build_request(prompt="a blog about tea")
    ids = ["c2a-b0000", str(uuid.uuid4())]
    for build_id in ids:
        store.add(request, new_request_id(), build_id)
    requests, _ = tick(instance, None)
    assert [r.tags[BUILD_ID] for r in requests] == ids


def test_a_row_the_cursor_passed_is_picked_up_later(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    old, _new = add_rows(store, 2)
    _, cursor = tick(instance, None)
    # Both still pending a minute later (say, the first one's run never started).
    with store.engine.begin() as conn:
        conn.execute(
            update(build_requests)
            .where(build_requests.c.seq == old.seq)
            .values(created_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    requests, _ = tick(instance, cursor)
    assert [r.run_key for r in requests] == [old.request_id]  # the same run key: no second run


def test_a_failed_plan_run_fails_its_request(
    db_service: BuildService, instance: DagsterInstance, database_url: str
) -> None:
    store = RequestStore(database_url)
    (row,) = add_rows(store, 1)
    result = plan_build.execute_in_process(
        run_config={"ops": {"validate_request": {"config": {"prompt": "x", "framework": "cobol"}}}},
        instance=instance,
        tags={REQUEST_ID: row.request_id, BUILD_ID: row.build_id},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    evaluate_failed_run_sensor(instance, result.dagster_run, failure)
    failed = store.find(row.request_id)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and f"plan_build run {result.run_id} failed" in failed.error
