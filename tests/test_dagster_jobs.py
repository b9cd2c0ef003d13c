"""Real Dagster runs on a temporary instance: plan_build, the per-build job, re-execution."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    ReexecutionOptions,
    execute_job,
)
from dagster._core.execution.api import create_execution_plan, execute_run
from sqlalchemy import insert

from sheen_pipeline.checks.results import BLOCKING, CHECKS
from sheen_pipeline.config import Settings
from sheen_pipeline.defs import sheen
from sheen_pipeline.defs.build_job import make_build_job
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.repository import SheenRepositoryData
from sheen_pipeline.models import parse_build_request
from sheen_pipeline.runs.names import build_job_name
from sheen_pipeline.runs.origins import local_origins, reconstructable_job
from sheen_pipeline.runs.tags import BUILD_ID, LOCATION_NAME, PLAN_RUN_ID, PROJECT_ID, USER_ID
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.tables import plans
from tests.conftest import FLAKY_PROVIDER
from tests.support.builds import PROMPT, build, deployed_page, store_offline_plans
from tests.support.providers import calls_by_task
from tests.support.runs import started_steps, succeeded_steps

STATIC_JOBS = {
    "plan_build",
    "evict_result_cache",
    "daily_costs_job",
    "promote_build",
    "eval_suite",
    "__ASSET_JOB",
}
TASKS = {"config", "styles", "forms", "index_page", "page_metadata"}


def test_whole_build_succeeds_and_records_the_preview_asset(
    instance: DagsterInstance, service: BuildService, sheen_home: Path
) -> None:
    outcome, lines = build(instance, service, project_id="coffee", user_id="u1")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.build_id is not None
    assert outcome.preview_url == f"http://127.0.0.1:8787/p/{outcome.build_id}/"
    assert outcome.files == ["index.html", "js/forms.js", "site.json", "styles.css"]
    assert outcome.task_count == 5 and outcome.usage.cost_usd == 0.0
    page = deployed_page(outcome.build_id)
    assert "Blue Fern Coffee" in page

    assert lines[0] == "planning"
    assert lines[1] == "plan_partial: task config (setup_config site.json)"
    assert [line.split()[2] for line in lines[1:6]] == [
        "config",
        "styles",
        "forms",
        "index_page",
        "page_metadata",
    ]
    assert lines[6] == "plan ready with 5 tasks (provider offline, model offline)"
    assert "task forms done: js/forms.js" in lines
    assert lines[-5:-1] == [
        "build started (static)",
        "deploy started (local)",
        "deployed to local: 4 files uploaded, 0 reused",
        "\n".join(  # the tests turn the browser checks off (test_preview_checks turns them on)
            f"check {name} ({'blocking' if name in BLOCKING else 'warning'}) not run: "
            "SHEEN_PREVIEW_CHECKS=off"
            for name in CHECKS
        ),
    ]
    assert lines[-1] == f"build completed: {outcome.preview_url} (cost $0)"

    plan_run_id, build_run_id = outcome.dagster_run_ids
    build_run = instance.get_run_by_id(build_run_id)
    assert build_run is not None and build_run.status == DagsterRunStatus.SUCCESS
    assert build_run.job_name == f"build_{outcome.build_id}"
    assert build_run.tags[BUILD_ID] == outcome.build_id
    assert (build_run.tags[PROJECT_ID], build_run.tags[USER_ID]) == ("coffee", "u1")
    assert build_run.tags[PLAN_RUN_ID] == plan_run_id
    assert build_run.remote_job_origin is not None
    assert build_run.remote_job_origin.location_name == LOCATION_NAME
    assert succeeded_steps(instance, build_run_id) == TASKS | {
        "build_site",
        "deploy_preview",
        "check_preview",
    }

    event = instance.get_latest_materialization_event(AssetKey(["sheen", "coffee", "preview"]))
    assert event is not None and event.asset_materialization is not None
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert metadata["build_id"] == outcome.build_id
    assert metadata["preview_url"] == outcome.preview_url
    assert metadata["file_count"] == 4 and metadata["task_count"] == 5
    assert metadata["cost_usd"] == 0.0 and metadata["total_tokens"] == 0
    assert metadata["files"] == outcome.files
    assert isinstance(metadata["duration_s"], float)


def test_job_graph_matches_the_plan(service: BuildService, instance: DagsterInstance) -> None:
    outcome, _ = build(instance, service)
    plan = service.store.get_plan(outcome.build_id)
    assert plan is not None
    job = make_build_job(plan, Settings.from_env())
    execution_plan = create_execution_plan(job)
    for task in plan.tasks:
        step = execution_plan.get_step_by_key(task.id)
        assert set(step.get_execution_dependency_keys()) == set(task.input.dependencies)
    build_step = execution_plan.get_step_by_key("build_site")
    assert set(build_step.get_execution_dependency_keys()) == TASKS
    assert (
        make_build_job(plan, Settings.from_env()).get_job_snapshot_id() == job.get_job_snapshot_id()
    )


def test_repository_serves_stored_plans_lazily(
    service: BuildService, instance: DagsterInstance
) -> None:
    outcome, _ = build(instance, service)
    name = f"build_{outcome.build_id}"
    assert sheen.get_job(name).name == name
    assert set(sheen.job_names) == {*STATIC_JOBS, name}
    assert {s.name for s in sheen.schedule_defs} == {
        "hourly_result_cache_eviction",
        "hourly_cost_refresh",
    }
    assert {s.name for s in sheen.sensor_defs} == {
        "build_requests_sensor",
        "canceled_run_sensor",
        "failed_run_sensor",
        "plan_approval_expiry_sensor",
        "stalled_build_sensor",
        "webhook_delivery_sensor",
    }
    assert not sheen.has_job("build_nothere")
    assert sheen.has_job(name)


def test_the_code_location_declares_each_projects_preview_checks(
    service: BuildService, instance: DagsterInstance
) -> None:
    build(instance, service, project_id="fern")
    repository = SheenRepositoryData(Settings.from_env)
    preview = AssetKey(["sheen", "fern", "preview"])
    assert {preview, AssetKey(["sheen", "fern", "production"])} <= set(
        repository.get_assets_defs_by_key()
    )
    checks = {
        key.name for key in repository.get_asset_checks_defs_by_key() if key.asset_key == preview
    }
    assert checks == set(CHECKS)


def test_repository_lists_only_the_newest_builds_but_loads_any_by_name(
    service: BuildService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_UI_JOB_WINDOW", "3")
    build_ids = [f"old{number}" for number in range(6)]
    store_offline_plans(service.store, build_ids)
    listed = set(SheenRepositoryData(Settings.from_env).get_job_names()) - STATIC_JOBS
    assert listed == {build_job_name(build_id) for build_id in build_ids[-3:]}
    oldest = build_job_name(build_ids[0])
    assert SheenRepositoryData(Settings.from_env).get_job(oldest).name == oldest


def test_plan_build_queues_the_build_run_with_the_plan_runs_origin(
    service: BuildService, instance: DagsterInstance
) -> None:
    remote, code = local_origins(plan_build.name)
    run = instance.create_run_for_job(
        plan_build,
        run_config={"ops": {"validate_request": {"config": {"prompt": PROMPT}}}},
        remote_job_origin=remote,
        job_code_origin=code,
    )
    result = execute_run(reconstructable_job(plan_build.name), run, instance)
    assert result.success
    build_id = instance.get_run_by_id(run.run_id).tags[BUILD_ID]  # type: ignore[union-attr]
    queued = instance.get_runs()
    build_runs = [r for r in queued if r.job_name == f"build_{build_id}"]
    assert len(build_runs) == 1
    assert build_runs[0].status == DagsterRunStatus.QUEUED
    assert build_runs[0].remote_job_origin.repository_origin == remote.repository_origin  # type: ignore[union-attr]
    assert service.store.get_build(build_id).status is BuildStatus.PLANNED


def test_invalid_request_fails_the_plan_run_with_a_clear_reason(
    instance: DagsterInstance, sheen_home: Path
) -> None:
    result = plan_build.execute_in_process(
        run_config={"ops": {"validate_request": {"config": {"prompt": "x", "user_id": "bad id"}}}},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    assert failure.user_failure_data is not None
    assert "user_id: may contain only letters" in (failure.user_failure_data.description or "")


def test_cycles_with_approval_required_block_the_plan(
    instance: DagsterInstance, service: BuildService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:CyclicOfflineProvider")
    monkeypatch.setenv("SHEEN_MAX_CYCLE_EDGES_TO_DROP", "0")
    monkeypatch.setenv("SHEEN_SEQUENTIAL_FALLBACK", "false")
    monkeypatch.setenv("SHEEN_REQUIRE_PLAN_APPROVAL", "true")
    outcome, lines = build(instance)
    assert outcome.status == "blocked" and outcome.build_id is not None
    assert any(line.startswith("plan blocked, waiting for approval: cycles") for line in lines)
    record = service.store.get_build(outcome.build_id)
    assert record.status is BuildStatus.BLOCKED
    assert "config -> " in (record.error or "")
    assert service.store.get_plan(outcome.build_id) is None


def test_sequential_fallback_is_recorded_and_still_builds(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, sheen_home: Path
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:CyclicOfflineProvider")
    monkeypatch.setenv("SHEEN_MAX_CYCLE_EDGES_TO_DROP", "0")
    outcome, lines = build(instance)
    assert outcome.status == "succeeded", outcome.error
    assert any(line.startswith("plan_warning: running tasks one by one") for line in lines)


def test_reexecution_from_failure_reruns_only_the_failed_task_and_downstream(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", FLAKY_PROVIDER)
    monkeypatch.setenv("SHEEN_TEST_FAIL_TASK", "forms")
    service = BuildService.from_env()
    outcome, lines = build(instance, service)
    assert outcome.status == "failed"
    assert outcome.error == "task forms failed: injected failure in task forms"
    assert "task forms failed: injected failure in task forms" in lines
    assert "build failed: task forms failed: injected failure in task forms" in lines
    build_id = outcome.build_id
    first_run_id = outcome.dagster_run_ids[1]
    assert succeeded_steps(instance, first_run_id) == {"config", "styles"}
    assert "index_page" not in started_steps(instance, first_run_id)

    first_run = instance.get_run_by_id(first_run_id)
    assert first_run is not None
    result = execute_job(
        reconstructable_job(first_run.job_name),
        instance,
        reexecution_options=ReexecutionOptions.from_failure(first_run_id, instance),
    )
    assert result.success
    assert started_steps(instance, result.run_id) == {
        "forms",
        "index_page",
        "page_metadata",
        "build_site",
        "deploy_preview",
        "check_preview",
    }
    assert calls_by_task(sheen_home, build_id) == {
        "config": 1,
        "styles": 1,
        "forms": 2,
        "index_page": 1,
        "page_metadata": 1,
    }
    record = service.store.get_build(build_id)
    assert record.status is BuildStatus.SUCCEEDED and record.error is None
    assert "Blue Fern Coffee" in deployed_page(build_id)


def test_tasks_with_dashes_and_keywords_build(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:AwkwardIdsOfflineProvider")
    outcome, lines = build(instance)
    assert outcome.status == "succeeded", outcome.error
    assert "task index-page done: index.html" in lines
    build_run_id = outcome.dagster_run_ids[1]
    assert succeeded_steps(instance, build_run_id) == {
        "_site__config",
        "class",
        "forms",
        "_index__page",
        "page_metadata",
        "build_site",
        "deploy_preview",
        "check_preview",
    }


def test_a_plan_that_cannot_become_a_job_leaves_the_code_location_loading(
    service: BuildService, instance: DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    outcome, _ = build(instance, service)
    broken = "c2a-b0000"
    service.store.create_build(broken, parse_build_request(prompt=PROMPT))
    with service.store.engine.begin() as conn:  # for example a plan stored by an older version
        conn.execute(
            insert(plans).values(
                build_id=broken, plan_json='{"build_id": "c2a-b0000"}', created_at=datetime.now(UTC)
            )
        )
    repository = SheenRepositoryData(Settings.from_env)
    names = {job.name for job in repository.get_all_jobs()}
    assert names == {*STATIC_JOBS, f"build_{outcome.build_id}"}
    assert any("plan_skipped" in r.message and broken in r.message for r in caplog.records)
    assert not repository.has_job(build_job_name(broken))
    assert {s.name for s in repository.get_all_sensors()} >= {"build_requests_sensor"}
