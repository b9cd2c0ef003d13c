"""The run queue of this repository's dagster.yaml: builds before new plans, run slots kept for
builds, and runs that failed before their steps re-executed by the instance (never lost)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    instance_for_test,
)
from dagster._core.storage.tags import MAX_RETRIES_TAG, PARENT_RUN_ID_TAG, WILL_RETRY_TAG
from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import (
    consume_new_runs_for_automatic_reexecution,
)
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.build_job import make_build_job
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.models import parse_build_request
from sheen_pipeline.planning.dag import LadderPolicy
from sheen_pipeline.planning.planner import make_plan
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.runs.origins import local_origins
from sheen_pipeline.runs.tags import (
    BUILD_ID,
    BUILD_RUN_TAGS,
    PLAN_RUN_TAGS,
    REQUEST_ID,
)
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.requests import RequestStore, new_request_id
from tests.conftest import PROJECT_INSTANCE, REPO_ROOT
from tests.support.sensors import evaluate_failed_run_sensor

QUEUE_SETTINGS = ("run_coordinator", "concurrency", "run_retries")


@pytest.fixture
def queued_instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """An instance with the run coordinator, concurrency and run retry settings of dagster.yaml."""
    config = PROJECT_INSTANCE
    overrides = {key: config[key] for key in QUEUE_SETTINGS}
    with instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        yield instance


def add_runs(
    instance: DagsterInstance, tags: dict[str, str], count: int, status: DagsterRunStatus
) -> list[str]:
    remote, _code = local_origins(plan_build.name)
    runs = [
        create_run_for_test(
            instance, job_name="j", status=status, tags=tags, remote_job_origin=remote
        )
        for _ in range(count)
    ]
    return [run.run_id for run in runs]


def queue(instance: DagsterInstance, tags: dict[str, str], count: int) -> list[str]:
    return add_runs(instance, tags, count, DagsterRunStatus.QUEUED)


def next_to_start(instance: DagsterInstance) -> list[str]:
    """What the queued-run daemon would launch now, in its order."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    runs = daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)
    return [run.run_id for run in runs]


def test_the_jobs_carry_the_queue_tags(sheen_home: Path) -> None:
    request = parse_build_request(prompt="a blog about tea")
    plan = make_plan(request, "b1", OfflineProvider(), LadderPolicy()).plan
    assert PLAN_RUN_TAGS.items() <= plan_build.tags.items()
    assert BUILD_RUN_TAGS.items() <= make_build_job(plan, Settings.from_env()).tags.items()
    assert int(BUILD_RUN_TAGS["dagster/priority"]) > int(plan_build.tags.get("dagster/priority", 0))


def test_a_build_queued_after_many_plans_starts_first(queued_instance: DagsterInstance) -> None:
    plans = queue(queued_instance, PLAN_RUN_TAGS, 50)
    (build,) = queue(queued_instance, BUILD_RUN_TAGS, 1)
    assert next_to_start(queued_instance) == [build, *plans[:2]]


def test_plans_leave_run_slots_for_builds(queued_instance: DagsterInstance) -> None:
    add_runs(queued_instance, PLAN_RUN_TAGS, 2, DagsterRunStatus.STARTED)
    queue(queued_instance, PLAN_RUN_TAGS, 10)
    assert next_to_start(queued_instance) == []
    builds = queue(queued_instance, BUILD_RUN_TAGS, 3)
    assert next_to_start(queued_instance) == builds[:2]


def failed_before_start(instance: DagsterInstance, tags: dict[str, str]) -> str:
    remote, code = local_origins(plan_build.name)
    run = instance.create_run_for_job(
        plan_build,
        run_config={"ops": {"validate_request": {"config": {"prompt": "a blog about tea"}}}},
        tags=tags,
        remote_job_origin=remote,
        job_code_origin=code,
    )
    instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
    instance.report_run_failed(instance.get_run_by_id(run.run_id))  # type: ignore[arg-type]
    return run.run_id


def settle(instance: DagsterInstance, run_id: str) -> None:
    """Evaluate failed_run_sensor on the failure of run_id, as the daemon does."""
    (failure,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    run = instance.get_run_by_id(run_id)
    assert run is not None
    evaluate_failed_run_sensor(instance, run, failure.get_dagster_event())


def test_a_run_that_failed_before_its_steps_is_re_executed_by_the_daemon(
    queued_instance: DagsterInstance,
) -> None:
    run_id = failed_before_start(queued_instance, {REQUEST_ID: "r1"})
    failed = queued_instance.get_run_by_id(run_id)
    assert failed is not None and failed.tags[WILL_RETRY_TAG] == "true"
    (record,) = queued_instance.get_run_records(RunsFilter(run_ids=[run_id]))
    with create_test_daemon_workspace_context(
        WorkspaceFileTarget(paths=[str(REPO_ROOT / "workspace.yaml")]), queued_instance
    ) as workspace:
        list(consume_new_runs_for_automatic_reexecution(workspace, [record], logging.getLogger()))
    (again,) = queued_instance.get_runs(RunsFilter(tags={PARENT_RUN_ID_TAG: run_id}))
    assert again.status == DagsterRunStatus.QUEUED and again.tags[REQUEST_ID] == "r1"
    assert again.run_config == failed.run_config


def test_a_failed_step_is_the_builds_failure_and_not_retried(
    queued_instance: DagsterInstance, sheen_home: Path
) -> None:
    result = plan_build.execute_in_process(
        run_config={"ops": {"validate_request": {"config": {"prompt": "x", "framework": "cobol"}}}},
        instance=queued_instance,
        raise_on_error=False,
    )
    assert not result.success
    failed = queued_instance.get_run_by_id(result.run_id)
    assert failed is not None and failed.tags[WILL_RETRY_TAG] == "false"


def test_the_failure_sensor_leaves_a_retried_run_to_its_retry(
    queued_instance: DagsterInstance, service: BuildService
) -> None:
    requests = RequestStore(service.settings.database_url)
    row = requests.add(parse_build_request(prompt="a blog about tea"), new_request_id(), "c2a-b0")
    run_id = failed_before_start(queued_instance, {REQUEST_ID: row.request_id, BUILD_ID: "c2a-b0"})
    settle(queued_instance, run_id)
    pending = requests.find(row.request_id)
    assert pending is not None and pending.status == "pending"


def test_a_build_whose_run_has_no_retries_left_fails(
    queued_instance: DagsterInstance, service: BuildService
) -> None:
    service.store.create_build("c2a-b1", parse_build_request(prompt="a blog about tea"))
    run_id = failed_before_start(queued_instance, {BUILD_ID: "c2a-b1", MAX_RETRIES_TAG: "0"})
    settle(queued_instance, run_id)
    build = service.store.get_build("c2a-b1")
    assert build.status.value == "failed" and build.error is not None
    assert f"run {run_id} failed" in build.error


def test_a_late_failure_of_an_old_run_leaves_the_re_execution_that_succeeded(
    queued_instance: DagsterInstance, service: BuildService
) -> None:
    """The daemon may evaluate the failure sensor on a run after an operator's re-execution of
    it has already succeeded; the build stays succeeded and no build_failed is emitted."""
    service.store.create_build("c2a-b2", parse_build_request(prompt="a blog about tea"))
    run_id = failed_before_start(queued_instance, {BUILD_ID: "c2a-b2", MAX_RETRIES_TAG: "0"})
    service.store.start_run("c2a-b2", run_id)
    service.store.start_run("c2a-b2", "re-execution")
    service.store.set_status("c2a-b2", BuildStatus.SUCCEEDED, preview_url="http://x/")
    settle(queued_instance, run_id)
    assert service.store.get_build("c2a-b2").status is BuildStatus.SUCCEEDED
    assert service.events.last("c2a-b2") is None
