"""With `dagster dev` running (webserver + daemon), a build launched from the UI and one launched
from the CLI both fail on an injected task error, and the UI's "Re-execute from failure"
(GraphQL launchPipelineReexecution, strategy FROM_FAILURE) re-runs only the failed task and
what follows it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from sheen_pipeline.runs.forking_launcher import RUN_WORKER
from sheen_pipeline.runs.tags import BUILD_ID, LOCATION_NAME, PLAN_RUN_ID, REPOSITORY_NAME
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus
from tests.conftest import FLAKY_PROVIDER, PROJECT_INSTANCE
from tests.support.builds import build
from tests.support.processes import SHEEN, child_env, running
from tests.support.providers import calls_by_task
from tests.support.runs import started_steps
from tests.support.waiting import free_port, wait_for

UI_PROMPT = "a landing page for Red Fern Tea with a signup form"  # not a cache hit of PROMPT
RERUN_STEPS = {
    "forms",
    "index_page",
    "page_metadata",
    "build_site",
    "deploy_preview",
    "check_preview",
}
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

# The UI's re-executions are launched by this repository's run launcher (forked runs).
INSTANCE_YAML = (
    yaml.safe_dump({"run_launcher": PROJECT_INSTANCE["run_launcher"]})
    + """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""
)


class GraphQL:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            self.url, json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]

    def ready(self) -> bool:
        try:
            data = self("{ version }")
        except (requests.RequestException, AssertionError):
            return False
        return bool(data.get("version"))


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

REEXECUTE = """
mutation($parentRunId: String!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: FROM_FAILURE}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""

JOBS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"""


def finished_run(instance: DagsterInstance, run_id: str) -> DagsterRun:
    def check() -> DagsterRun | None:
        run = instance.get_run_by_id(run_id)
        return run if run is not None and run.status in FINISHED else None

    return wait_for(check, 180, f"run {run_id} to finish")


def launched_run_id(result: dict[str, Any]) -> str:
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id: str = result["run"]["runId"]
    return run_id


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def dev_env(tmp_path: Path, port: int) -> dict[str, str]:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    return child_env(
        {
            "SHEEN_DAGSTER_WEBSERVER_URL": f"http://127.0.0.1:{port}",
            "DAGSTER_HOME": str(dagster_home),
            "SHEEN_HOME": str(tmp_path / "sheen"),
            "SHEEN_TEST_PROVIDER": FLAKY_PROVIDER,
            "SHEEN_TEST_FAIL_TASK": "forms",
            "SHEEN_UI_RELOAD_INTERVAL_S": "2",
            "SHEEN_PREVIEW_CHECKS": "off",  # the step runs, its browser is not the subject
        }
    )


def test_ui_reexecutes_ui_and_cli_builds_from_failure(
    dev_env: dict[str, str], port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DAGSTER_HOME", "SHEEN_HOME", "SHEEN_TEST_PROVIDER", "SHEEN_TEST_FAIL_TASK"):
        monkeypatch.setenv(key, dev_env[key])
    instance = DagsterInstance.get()
    service = BuildService.from_env()

    # A build launched the CLI's way (in this process) fails on task "forms".
    cli_outcome, _ = build(instance, service)
    assert cli_outcome.status == "failed"
    cli_build_run_id = cli_outcome.dagster_run_ids[1]

    dagster = str(Path(sys.executable).parent / "dagster")
    args = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    watch = [SHEEN, "watch", "--poll-s", "1"]  # beside `dagster dev`, as `make dev` runs it
    with (
        running(args, dev_env, tmp_path / "dagster-dev.log"),
        running(watch, dev_env, tmp_path / "sheen-watch.log"),
    ):
        graphql = GraphQL(port)
        wait_for(graphql.ready, 180, "the Dagster webserver")

        # A build launched from the Launchpad: plan_build queues build_<id>, which fails.
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": REPOSITORY_NAME,
                "jobName": "plan_build",
            },
            "runConfigData": {"ops": {"validate_request": {"config": {"prompt": UI_PROMPT}}}},
        }
        plan_run_id = launched_run_id(graphql(LAUNCH, params=params)["launchRun"])
        assert finished_run(instance, plan_run_id).status == DagsterRunStatus.SUCCESS

        def ui_build_run() -> DagsterRun | None:
            runs = [r for r in instance.get_runs() if r.tags.get(PLAN_RUN_ID) == plan_run_id]
            return runs[0] if runs and runs[0].status in FINISHED else None

        ui_build = wait_for(ui_build_run, 180, "the UI-launched build run")
        assert ui_build.status == DagsterRunStatus.FAILURE

        # `sheen watch` reloads the code location: the new job is listed without a click.
        def listed() -> bool:
            (repository,) = graphql(JOBS)["repositoriesOrError"]["nodes"]
            return ui_build.job_name in {job["name"] for job in repository["jobs"]}

        wait_for(listed, 120, f"{ui_build.job_name} in the webserver's list of jobs")
        for failed_run_id in (ui_build.run_id, cli_build_run_id):
            result = graphql(REEXECUTE, parentRunId=failed_run_id)["launchPipelineReexecution"]
            child = finished_run(instance, launched_run_id(result))
            assert child.status == DagsterRunStatus.SUCCESS
            assert child.parent_run_id == failed_run_id
            assert RUN_WORKER in child.tags  # forked by the repository's run launcher
            assert started_steps(instance, child.run_id) == RERUN_STEPS
            build_id = child.tags[BUILD_ID]
            assert service.store.get_build(build_id).status is BuildStatus.SUCCEEDED
            assert calls_by_task(Path(dev_env["SHEEN_HOME"]), build_id) == {
                "config": 1,
                "styles": 1,
                "forms": 2,
                "index_page": 1,
                "page_metadata": 1,
            }
