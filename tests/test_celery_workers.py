"""One machine as if it were three: two Celery workers, each with its own empty SHEEN_HOME and
DAGSTER_HOME, a client that launches builds, and a third process that serves the preview. They
share only Postgres (app tables and Dagster's storage), RabbitMQ and the S3 artifact store (moto).
One worker is killed mid-build and the build still finishes; a failed build is re-executed from
failure on a worker that has never seen it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
import requests
import yaml
from dagster import DagsterInstance
from sqlalchemy import select

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.executor import CELERY_DELIVERY
from sheen_pipeline.events.runtime import stored_events
from sheen_pipeline.events.types import BuildEvent, EventType
from sheen_pipeline.store.builds import BuildStore
from sheen_pipeline.store.tables import builds
from tests.conftest import REPO_ROOT
from tests.support.builds import PROMPT
from tests.support.cluster import (
    WORKER_YAML,
    answers,
    celery_worker,
    client_env,
    machine_env,
    shared_services,
    worker_command,
)
from tests.support.processes import SHEEN, running, sheen_here
from tests.support.waiting import free_port, wait_for


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    control = tmp_path / "control"
    control.mkdir()
    with shared_services(
        SHEEN_TEST_PROVIDER="tests.support.providers:WorkerTestProvider",
        SHEEN_TEST_TASK_SLEEP_S="2",
        SHEEN_TEST_CONTROL=str(control),
        SHEEN_TEST_FAIL_TASK="index_page",
        SHEEN_PREVIEW_CHECKS="off",
    ) as shared:
        yield shared


def _events(shared: dict[str, str], build_id: str) -> list[BuildEvent]:
    return stored_events(Settings.from_env(shared)).after(build_id, 0, 1000)


def _task_spans(events: list[BuildEvent]) -> dict[str, tuple[float, float]]:
    """When each task started and ended (completed or failed), by its events."""
    starts: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for event in events:
        task_id, at = event.data.get("task_id"), event.timestamp.timestamp()
        if event.type is EventType.TASK_STARTED:
            starts[task_id] = at
        elif event.type in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
            spans[task_id] = (starts[task_id], at)
    return spans


def _newest_build(shared: dict[str, str]) -> str | None:
    with BuildStore(shared["SHEEN_DATABASE_URL"]).engine.connect() as conn:
        return conn.execute(select(builds.c.build_id)).scalar()


def _launch(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SHEEN, *args, "--json"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _summary(process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    process.wait(timeout=300)
    lines = log.read_text().splitlines()
    summary: dict[str, object] = json.loads(lines[-1])
    return summary


def test_the_worker_config_delivers_like_the_runs_send() -> None:
    """Workers and runs must agree: a step is acknowledged only when it ends."""
    config = yaml.safe_load(WORKER_YAML.read_text())["execution"]["config"]
    assert config["config_source"] == CELERY_DELIVERY


def test_tasks_on_two_workers_that_share_no_disk_survive_a_killed_worker(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    client = client_env(tmp_path, cluster_env)
    with (
        celery_worker(tmp_path, "worker-a", cluster_env) as a,
        celery_worker(tmp_path, "worker-b", cluster_env) as b,
    ):
        log = tmp_path / "build.log"
        process = _launch(client, log, "build", PROMPT)
        build_id = wait_for(lambda: _newest_build(cluster_env), 120, "the build to start")

        def running_on_a() -> str | None:
            events = _events(cluster_env, build_id)
            done = {e.data["task_id"] for e in events if e.type is EventType.TASK_COMPLETED}
            started = [e for e in events if e.type is EventType.TASK_STARTED]
            return next(
                (
                    e.data["task_id"]
                    for e in started
                    if a.owns(e.data["worker"]) and e.data["task_id"] not in done
                ),
                None,
            )

        killed_task = wait_for(running_on_a, 120, "a task to be running on worker-a")
        a_processes = {
            e.data["worker"]
            for e in _events(cluster_env, build_id)
            if e.type is EventType.TASK_STARTED and a.owns(e.data["worker"])
        }
        a.kill()
        summary = _summary(process, log)
        assert summary["status"] == "succeeded", log.read_text()[-3000:]

        events = _events(cluster_env, build_id)
        completed = {
            e.data["task_id"]: e.data["worker"]
            for e in events
            if e.type is EventType.TASK_COMPLETED
        }
        assert b.owns(completed[killed_task])  # redelivered to the worker that was left
        started_on = {e.data["worker"] for e in events if e.type is EventType.TASK_STARTED}
        assert a_processes and started_on - a_processes  # tasks ran on both workers
        assert all(b.owns(w) for w in started_on - a_processes)

        # A third process, with an empty SHEEN_HOME, serves the preview from the store.
        serve_env = machine_env(tmp_path, "server", cluster_env)
        url = f"http://127.0.0.1:{serve_env['SHEEN_PREVIEW_PORT']}"
        with running([SHEEN, "serve"], serve_env, tmp_path / "serve.log"):
            wait_for(lambda: answers(f"{url}/healthz"), 60, "sheen serve to start")
            page = requests.get(f"{url}/p/{build_id}/", timeout=10)
            assert page.status_code == 200 and "<h1>Blue Fern Coffee</h1>" in page.text
            health = requests.get(f"{url}/healthz", timeout=10).json()
            assert health["status"] == "ok"
            assert set(health["checks"]) == {"database", "artifact_store", "broker"}
            metrics = requests.get(f"{url}/metrics", timeout=10).text
            assert 'sheen_builds{status="succeeded"} 1.0' in metrics
            assert "sheen_task_duration_seconds_count 5.0" in metrics
        assert (
            'sheen_builds{status="succeeded"} 1.0'
            in requests.get(f"{b.metrics_url}/metrics", timeout=10).text
        )


def test_a_failed_build_re_executes_from_failure_on_a_worker_that_never_saw_it(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    client = client_env(tmp_path, cluster_env)
    limited = {**client, "SHEEN_POOL_LLM_LIMIT": "1"}
    assert sheen_here(limited, "init").returncode == 0  # one task call at a time, on any worker
    fail = Path(cluster_env["SHEEN_TEST_CONTROL"]) / "fail"
    fail.touch()
    with celery_worker(tmp_path, "worker-b", cluster_env, concurrency=2):
        log = tmp_path / "build.log"
        summary = _summary(_launch(client, log, "build", PROMPT), log)
        assert summary["status"] == "failed" and "index_page" in str(summary["error"])
        said = log.read_text()  # the failure once, as the command's own line
        assert "Traceback" not in said and " - ERROR - " not in said
        assert "DuplicateTaskNameWarning" not in said
    build_id = str(summary["build_id"])
    first_run = _events(cluster_env, build_id)
    # The pool held with two worker processes free: styles and forms, both ready after config,
    # never ran at the same time.
    spans = _task_spans(first_run)
    assert {"config", "styles", "forms", "index_page"} <= set(spans)
    ordered = sorted(spans.values())
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(ordered)), ordered

    fail.unlink()
    with celery_worker(tmp_path, "worker-c", cluster_env) as c:
        log = tmp_path / "retry.log"
        summary = _summary(_launch(client, log, "retry", build_id), log)
        assert summary["status"] == "succeeded", log.read_text()[-3000:]
        again = [
            e
            for e in _events(cluster_env, build_id)[len(first_run) :]
            if e.type is EventType.TASK_STARTED
        ]
        # Only the failed task and what follows it ran again, on the new worker, reading the
        # outputs of the tasks before it from the shared store.
        assert sorted(e.data["task_id"] for e in again) == ["index_page", "page_metadata"]
        assert all(c.owns(e.data["worker"]) for e in again)


@pytest.mark.parametrize("broker", ["away", "a wrong vhost"])
def test_a_build_whose_broker_is_away_ends_failed_naming_it_and_frees_its_pool_slots(
    tmp_path: Path, cluster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, broker: str
) -> None:
    """The plan is made, then the build run cannot send its first steps: the build ends failed
    with the reason (on the command's own lines, no stack trace), and the `llm` pool's slots its
    ready tasks claimed are free again."""
    if broker == "away":
        url, said = f"amqp://guest:guest@127.0.0.1:{free_port()}//", "could not be reached"
    else:
        url = cluster_env["SHEEN_CELERY_BROKER"].rsplit("/", 1)[0] + "/no-such-vhost"
        said = "refused this client"
    client = client_env(tmp_path, {**cluster_env, "SHEEN_CELERY_BROKER": url})
    assert sheen_here(client, "init").returncode == 0
    log = tmp_path / "build.log"
    summary = _summary(_launch(client, log, "build", PROMPT), log)
    assert summary["status"] == "failed", summary
    assert f"the Celery broker (SHEEN_CELERY_BROKER) {said}" in str(summary["error"])
    assert "Traceback" not in log.read_text() and " - ERROR - " not in log.read_text()
    build = BuildStore(cluster_env["SHEEN_DATABASE_URL"]).get_build(str(summary["build_id"]))
    assert build.status.value == "failed"
    monkeypatch.setenv("SHEEN_DAGSTER_POSTGRES_URL", client["SHEEN_DAGSTER_POSTGRES_URL"])
    with DagsterInstance.from_config(client["DAGSTER_HOME"]) as instance:
        info = instance.event_log_storage.get_concurrency_info("llm")
        assert info.active_slot_count == 0 and info.pending_step_count == 0


def test_a_worker_its_broker_refuses_exits_non_zero_saying_why(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    """A wrong virtual host is refused for good: the worker ends at once instead of retrying,
    giving up, and sitting forever without a consumer."""
    wrong = cluster_env["SHEEN_CELERY_BROKER"].rsplit("/", 1)[0] + "/no-such-vhost"
    env = machine_env(tmp_path, "refused", {**cluster_env, "SHEEN_CELERY_BROKER": wrong})
    ended = subprocess.run(
        worker_command("refused"), env=env, capture_output=True, text=True, timeout=120
    )
    assert ended.returncode != 0
    said = ended.stdout + ended.stderr
    assert "the Celery broker (SHEEN_CELERY_BROKER) refused this worker" in said
    assert "vhost no-such-vhost not found" in said
