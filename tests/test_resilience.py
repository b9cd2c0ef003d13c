"""Faults injected through test providers and the local fake LLM server: timeouts, retries,
failure isolation, partial re-execution, the result cache, sandboxed npm builds, redaction."""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance

from sheen_pipeline.build.npm import NpmRegistry, build_npm
from sheen_pipeline.build.sandbox import CommandFailed, Sandbox
from sheen_pipeline.config import FileLimits, Settings
from sheen_pipeline.events.types import EventType
from sheen_pipeline.logs import configure_logging, get_logger, log_context
from sheen_pipeline.service import BuildService
from tests.providers.conftest import llm_env
from tests.support.builds import PROMPT, build
from tests.support.fake_llm import AnthropicWire, FakeLLMServer, Recorded, Reply, offline_answer
from tests.support.processes import processes_with, sheen_cli_env, sheen_here
from tests.support.runs import started_steps, steps_with
from tests.support.waiting import wait_for

SECRET_KEY = "sk-ant-live-0123456789abcdef"
WEBHOOK_SECRET = "whsec-do-not-leak-42"


def events_of(service: BuildService, build_id: str) -> list[Any]:
    return service.events.after(build_id)


def test_a_hanging_task_times_out_while_its_siblings_finish(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:HangingOfflineProvider")
    monkeypatch.setenv("SHEEN_TEST_HANG_TASK", "forms")
    monkeypatch.setenv("SHEEN_TASK_TIMEOUTS", '{"create_component": 1}')  # forms' type only
    service = BuildService.from_env()
    outcome, _ = build(instance, service)
    assert outcome.status == "failed"
    assert outcome.error == "task forms failed: task forms timed out after 1s"
    events = events_of(service, outcome.build_id)
    (timeout,) = [e for e in events if e.type is EventType.TASK_TIMEOUT]
    assert timeout.data == {"task_id": "forms", "timeout_s": 1}
    assert (sheen_home / "cancelled-forms").exists()  # the call was cancelled, not abandoned
    completed = {e.data["task_id"] for e in events if e.type is EventType.TASK_COMPLETED}
    assert completed == {"config", "styles"}  # the sibling finished
    run_id = outcome.dagster_run_ids[1]
    assert "index_page" not in started_steps(instance, run_id)  # downstream did not run
    assert "build_site" not in started_steps(instance, run_id)
    assert [e.type for e in events].count(EventType.BUILD_FAILED) == 1


def test_the_build_stops_cleanly_at_its_time_limit(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:ProbeOfflineProvider")
    # Three levels of 1.5 s tasks cannot fit in 4 s; the first level does, with room to spare
    # on a machine busy with other tests.
    monkeypatch.setenv("SHEEN_TEST_TASK_SLEEP_S", "1.5")
    monkeypatch.setenv("SHEEN_BUILD_TIMEOUT_S", "4")
    service = BuildService.from_env()
    outcome, _ = build(instance, service)
    assert outcome.status == "failed"
    assert outcome.error is not None and "ran out of its 4s limit" in outcome.error
    events = events_of(service, outcome.build_id)
    assert events[-1].type is EventType.BUILD_FAILED
    completed = [e for e in events if e.type is EventType.TASK_COMPLETED]
    assert 1 <= len(completed) < 5
    assert "deploy_preview" not in started_steps(instance, outcome.dagster_run_ids[1])


def test_overload_then_success_is_retried_by_the_retry_policy(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeLLMServer(AnthropicWire()) as server:
        for key, value in llm_env("anthropic", server).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("SHEEN_LLM_MAX_RETRIES", "0")  # leave retries to Dagster
        monkeypatch.setenv("SHEEN_TASK_RETRY_DELAY_S", "0.1")
        overloaded = Reply("Overloaded", status=529, error_type="overloaded_error")
        server.then(offline_answer, overloaded)  # the plan, then the first task call
        service = BuildService.from_env()
        outcome, _ = build(instance, service)
    assert outcome.status == "succeeded", outcome.error
    config_events = [
        (e.type, e.data.get("attempt"), e.data.get("will_retry"))
        for e in events_of(service, outcome.build_id)
        if e.data.get("task_id") == "config"
    ]
    assert config_events == [
        (EventType.TASK_STARTED, 1, None),
        (EventType.TASK_FAILED, 1, True),
        (EventType.TASK_STARTED, 2, None),
        (EventType.TASK_COMPLETED, None, None),
    ]
    run_id = outcome.dagster_run_ids[1]
    assert steps_with(instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY) == {"config"}


def requested_task(request: Recorded) -> str | None:
    """The id of the task a files request asks for (from its user message)."""
    if request.schema_title != "FilesSpec":
        return None
    user = request.body["messages"][-1]["content"]
    return str(json.loads(user.split("```json\n")[1].split("\n```")[0])["id"])


def fail_task_once(task_id: str, status: int) -> Any:
    """A responder that answers `status` to the first files request of task_id."""
    failed: list[bool] = []

    def respond(request: Recorded) -> Reply:
        if requested_task(request) == task_id and not failed:
            failed.append(True)
            return Reply(
                "invalid request: unsupported content",
                status=status,
                error_type="invalid_request_error",
            )
        return offline_answer(request)

    return respond


def task_calls(server: FakeLLMServer) -> list[str]:
    return [task for r in server.requests if (task := requested_task(r)) is not None]


def test_permanent_failure_is_isolated_and_sheen_retry_finishes_the_build(tmp_path: Path) -> None:
    with FakeLLMServer(AnthropicWire(), default=fail_task_once("forms", 400)) as server:
        env = sheen_cli_env(tmp_path, **llm_env("anthropic", server))
        failed = sheen_here(env, "build", PROMPT, "--json")
        assert failed.returncode == 1
        summary = json.loads(failed.stdout.splitlines()[-1])
        assert summary["status"] == "failed"
        assert summary["error"].startswith("task forms failed: Anthropic API error 400")
        assert sorted(task_calls(server)) == ["config", "forms", "styles"]  # no retry of a 400

        tasks_before = len(task_calls(server))
        # Local folders are only a cache: the retry reads files and step outputs from the
        # shared store, as it would on another machine.
        shutil.rmtree(Path(env["SHEEN_HOME"]) / "workspaces")  # config's and styles' files
        shutil.rmtree(Path(env["DAGSTER_HOME"]) / "storage", ignore_errors=True)
        retried = sheen_here(env, "retry", summary["build_id"], "--json")
        assert retried.returncode == 0, retried.stderr
        after = json.loads(retried.stdout.splitlines()[-1])
        assert after["status"] == "succeeded" and after["preview_url"]
        assert task_calls(server)[tasks_before:] == ["forms", "index_page", "page_metadata"]
        # The build's cost counts each call that succeeded once: the plan, config and styles
        # (reused from the first run, not called again), then forms, index_page, page_metadata.
        assert after["tokens"]["input"] == 1000 * 6


def test_an_identical_rebuild_makes_no_provider_call(tmp_path: Path) -> None:
    with FakeLLMServer(AnthropicWire()) as server:
        env = sheen_cli_env(tmp_path, **llm_env("anthropic", server))
        first = json.loads(sheen_here(env, "build", PROMPT, "--json").stdout.splitlines()[-1])
        calls = len(server.requests)
        assert first["status"] == "succeeded" and first["cost_usd"] > 0
        second = sheen_here(env, "build", PROMPT, "--json")
        summary = json.loads(second.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert len(server.requests) == calls  # not one more call
    assert summary["cost_usd"] == 0 and summary["tokens"]["input"] == 0
    assert summary["build_id"] != first["build_id"]
    events = sheen_here(env, "events", summary["build_id"], "--json").stdout.splitlines()
    hits = [json.loads(line) for line in events if '"task_completed"' in line]
    assert [e["data"]["cache_hit"] for e in hits] == [True] * first["task_count"]


def test_expired_results_are_evicted(db_service: BuildService) -> None:
    cache = db_service.cache
    cache.put("fresh", {"v": 1}, now=1000.0)
    cache.put("stale", {"v": 2}, now=1000.0 - cache.ttl_s)
    assert cache.evict_expired(now=1000.5) == 1
    assert cache.get("fresh", now=1000.5) == {"v": 1}
    assert cache.get("stale", now=1000.5) is None


def test_a_build_script_that_never_ends_is_killed_with_its_children(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    marker = f"{uuid.uuid4().int % 10_000}.25"  # a unique sleep length to find the child by
    forever = (
        f"node -e \"require('child_process').spawn('sleep',['{marker}'],{{stdio:'ignore'}});"
        'setInterval(()=>{},1000)"'
    )
    (workspace / "package.json").write_text(json.dumps({"scripts": {"build": forever}}))
    sandbox = Sandbox(Settings.from_env().sandbox)
    with pytest.raises(CommandFailed, match=r"`npm run build` timed out after 3s and was killed"):
        build_npm(
            workspace, tmp_path / "dist", 3, FileLimits(), sandbox, NpmRegistry(tmp_path / "cache")
        )
    wait_for(
        lambda: not processes_with(f"sleep {marker}"), 15, "the script's child to be killed too"
    )


def test_npm_build_runs_without_our_secrets_and_its_output_reaches_the_run_logs(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:NpmProjectProvider")
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_KEY)
    monkeypatch.setenv("SHEEN_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("SHEEN_INGRESS_SECRET", "ingress-do-not-leak")
    outcome, _ = build(instance, prompt="an npm site")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.files == ["index.html"]
    logs = [e.user_message for e in instance.all_logs(outcome.dagster_run_ids[1])]
    (dump,) = [line for m in logs for line in m.splitlines() if line.startswith("ENV {")]
    env = json.loads(dump.removeprefix("ENV "))
    assert env["NODE_ENV"] == "production"
    assert not {"ANTHROPIC_API_KEY", "SHEEN_WEBHOOK_SECRET", "SHEEN_INGRESS_SECRET"} & set(env)
    everything = json.dumps(logs)
    assert SECRET_KEY not in everything and WEBHOOK_SECRET not in everything


def test_secrets_never_reach_events_metadata_or_errors(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:LeakyOfflineProvider")
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_KEY)
    monkeypatch.setenv("SHEEN_WEBHOOK_SECRET", WEBHOOK_SECRET)
    service = BuildService.from_env()
    outcome, _ = build(instance, service)
    assert outcome.status == "failed"
    assert outcome.error is not None and "[REDACTED]" in outcome.error
    stored = json.dumps([e.payload() for e in events_of(service, outcome.build_id)])
    dagster_logs = []
    for run_id in outcome.dagster_run_ids:
        for entry in instance.all_logs(run_id):
            dagster_logs.append(entry.user_message)
            if entry.dagster_event and entry.dagster_event.is_step_failure:
                dagster_logs.append(str(entry.dagster_event.step_failure_data))
    for text in (outcome.error, stored, json.dumps(dagster_logs)):
        assert (
            SECRET_KEY not in text and WEBHOOK_SECRET not in text and "ops@example.com" not in text
        )


def test_a_log_line_with_a_key_is_redacted_and_carries_ids() -> None:
    configure_logging([WEBHOOK_SECRET])
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    logging.getLogger("sheen_pipeline").addHandler(handler)
    try:
        with log_context(build_id="b42", task_id="forms", run_id="r-1"):
            get_logger("sheen_pipeline.test").info(
                "calling", key=SECRET_KEY, note=f"secret {WEBHOOK_SECRET}"
            )
        logging.getLogger("sheen_pipeline.test").warning("plain %s line", SECRET_KEY)
    finally:
        logging.getLogger("sheen_pipeline").removeHandler(handler)
    structured = json.loads(lines[0])
    assert (structured["build_id"], structured["task_id"], structured["run_id"]) == (
        "b42",
        "forms",
        "r-1",
    )
    assert structured["event"] == "calling" and structured["key"] == "[REDACTED]"
    assert structured["note"] == "secret [REDACTED]"
    assert lines[1] == "plain [REDACTED] line"
