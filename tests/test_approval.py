"""Plan approval: waiting, approving (CLI or UI launch), rejecting and expiring."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.execution.api import execute_run

from sheen_pipeline.approval import ApprovalError, approve, expire_stale, reject
from sheen_pipeline.events.types import EventType
from sheen_pipeline.runs.launch import create_build_run, plan_run_of
from sheen_pipeline.runs.local import BuildOutcome, run_approved_build
from sheen_pipeline.runs.origins import reconstructable_job
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import Approval, BuildStatus
from sheen_pipeline.store.files import Stage
from tests.support.builds import PROMPT, build
from tests.support.processes import sheen_cli_env, sheen_here


@pytest.fixture
def approval_service(db_service: BuildService, monkeypatch: pytest.MonkeyPatch) -> BuildService:
    monkeypatch.setenv("SHEEN_REQUIRE_PLAN_APPROVAL", "true")
    return BuildService.from_env()


def planned(instance: DagsterInstance, service: BuildService) -> BuildOutcome:
    outcome, _ = build(instance, service)
    assert outcome.status == "awaiting_approval" and outcome.build_id
    return outcome


def event_types(service: BuildService, build_id: str) -> list[EventType]:
    return [event.type for event in service.events.after(build_id)]


def test_planned_build_waits_then_runs_when_approved(
    approval_service: BuildService, instance: DagsterInstance
) -> None:
    service = approval_service
    outcome = planned(instance, service)
    build_id = outcome.build_id
    record = service.store.get_build(build_id)
    assert record.status is BuildStatus.AWAITING_APPROVAL and record.approval is Approval.REQUIRED
    assert event_types(service, build_id)[-1] is EventType.PLAN_GENERATED
    assert len(outcome.dagster_run_ids) == 1  # no build run yet

    plan = approve(service, build_id)
    assert service.store.get_build(build_id).approval is Approval.APPROVED
    result = run_approved_build(instance, service, plan, lambda _: None)
    assert result.status == "succeeded" and result.preview_url
    with pytest.raises(ApprovalError, match="not waiting for approval"):
        approve(service, build_id)


def test_launching_the_build_job_approves_it(
    approval_service: BuildService, instance: DagsterInstance
) -> None:
    build_id = planned(instance, approval_service).build_id
    plan = approval_service.store.get_plan(build_id)
    assert plan is not None
    run = create_build_run(instance, build_id, plan_run_of(instance, build_id))  # the UI's Launch
    assert execute_run(reconstructable_job(run.job_name), run, instance).success
    record = approval_service.store.get_build(build_id)
    assert record.status is BuildStatus.SUCCEEDED and record.approval is Approval.APPROVED


def test_rejected_build_ends_and_cannot_be_launched(
    approval_service: BuildService, instance: DagsterInstance
) -> None:
    service = approval_service
    build_id = planned(instance, service).build_id
    reject(service, build_id, "wrong colours")
    record = service.store.get_build(build_id)
    assert record.status is BuildStatus.FAILED and record.error == "plan rejected: wrong colours"
    last = service.events.after(build_id)[-1]
    assert (
        last.type is EventType.BUILD_FAILED
        and last.data["reason"] == "plan rejected: wrong colours"
    )
    with pytest.raises(ApprovalError):
        approve(service, build_id)

    plan = service.store.get_plan(build_id)
    assert plan is not None
    run = create_build_run(instance, build_id, plan_run_of(instance, build_id))
    result = execute_run(reconstructable_job(run.job_name), run, instance)
    assert not result.success
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE  # type: ignore[union-attr]
    assert service.files.stage_files(build_id, Stage.DIST) == []


def test_unapproved_plans_expire(approval_service: BuildService, instance: DagsterInstance) -> None:
    service = approval_service
    build_id = planned(instance, service).build_id
    assert expire_stale(service) == []  # not yet
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert expire_stale(service, now=later) == [build_id]
    record = service.store.get_build(build_id)
    assert record.status is BuildStatus.FAILED and record.approval is Approval.EXPIRED
    assert record.error == "plan approval expired after 300s"
    assert event_types(service, build_id)[-1] is EventType.BUILD_FAILED
    assert expire_stale(service, now=later) == []  # once


def test_cli_build_waits_and_approve_runs_it(tmp_path: Path) -> None:
    env = sheen_cli_env(tmp_path, SHEEN_REQUIRE_PLAN_APPROVAL="true")
    waiting = sheen_here(env, "build", PROMPT, "--json")
    assert waiting.returncode == 3, waiting.stderr
    summary = json.loads(waiting.stdout.splitlines()[-1])
    assert summary["status"] == "awaiting_approval"
    build_id = summary["build_id"]
    assert f"sheen approve {build_id}" in waiting.stderr

    status = sheen_here(env, "status", build_id)
    assert status.returncode == 0, status.stderr
    assert f"-  {build_id}  awaiting_approval" in status.stdout  # a CLI build has no request row
    assert sheen_here(env, "status", "bnothere").returncode == 1
    approved = sheen_here(env, "approve", build_id, "--here", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout.splitlines()[-1])["status"] == "succeeded"

    other = json.loads(sheen_here(env, "build", PROMPT, "--json").stdout.splitlines()[-1])[
        "build_id"
    ]
    rejected = sheen_here(env, "reject", other, "--reason", "not now")
    assert rejected.returncode == 0 and f"rejected build {other}" in rejected.stdout
    again = sheen_here(env, "approve", other)
    assert again.returncode == 1 and "not waiting for approval (it is rejected)" in again.stderr
