"""`sheen build` end to end against local servers speaking the Anthropic and OpenAI wire formats."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from sheen_pipeline.runs.tags import MODEL, PROVIDER
from tests.providers.conftest import llm_env
from tests.support.builds import PROMPT, deployed_page
from tests.support.fake_llm import (
    AnthropicWire,
    FakeLLMServer,
    OpenAIWire,
    Recorded,
    Reply,
    offline_answer,
)
from tests.support.processes import sheen_cli_env, sheen_here


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_sheen_build_against_a_real_wire_format(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeLLMServer(AnthropicWire() if kind == "anthropic" else OpenAIWire()) as server:
        env = sheen_cli_env(tmp_path, **llm_env(kind, server))
        result = sheen_here(env, "build", PROMPT, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "succeeded"
    titles = [r.schema_title for r in server.requests]
    assert titles == ["PlanSpec"] + ["FilesSpec"] * summary["task_count"]
    calls = len(titles)
    # Every call returned 1000 input and 500 output tokens at $3 / $15 per million.
    assert summary["tokens"]["input"] == 1000 * calls and summary["tokens"]["output"] == 500 * calls
    assert Decimal(str(summary["cost_usd"])) == Decimal("0.0105") * calls
    page = deployed_page(summary["build_id"], env=env)
    assert "<h1>Blue Fern Coffee</h1>" in page

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with DagsterInstance.get() as instance:
        for run_id in summary["dagster_run_ids"]:
            run = instance.get_run_by_id(run_id)
            assert run is not None
            assert run.tags[PROVIDER] == kind
            assert run.tags[MODEL] == (
                "claude-sonnet-5-5" if kind == "anthropic" else "llama-3.3-70b"
            )


def asked_task(request: Recorded) -> str | None:
    """The id of the task a files request (or its re-ask) is about."""
    if request.schema_title != "FilesSpec":
        return None
    first = next(m["content"] for m in request.body["messages"] if m["role"] == "user")
    return str(json.loads(first.split("```json\n")[1].split("\n```")[0])["id"])


def test_a_failed_build_reports_every_paid_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(request: Recorded) -> Reply:
        if asked_task(request) == "forms":
            return Reply("this is not JSON at all")  # paid for, and never valid
        return offline_answer(request)

    with FakeLLMServer(AnthropicWire(), default=answer) as server:
        env = sheen_cli_env(tmp_path, **llm_env("anthropic", server))
        result = sheen_here(env, "build", PROMPT, "--json")
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        events = json.loads(
            "["
            + ",".join(sheen_here(env, "events", summary["build_id"], "--json").stdout.splitlines())
            + "]"
        )
    assert summary["status"] == "failed" and "still invalid" in summary["error"]
    calls = len(server.requests)
    assert [asked_task(r) for r in server.requests].count("forms") == 3  # the answer and 2 re-asks
    assert summary["tokens"]["input"] == 1000 * calls
    assert Decimal(str(summary["cost_usd"])) == Decimal("0.0105") * calls
    # build_failed carries the cost up to the failure; a sibling task whose call was in flight
    # then reports its own cost in its task_completed, after it
    (failed_at,) = [n for n, e in enumerate(events) if e["type"] == "build_failed"]
    at_failure = Decimal(events[failed_at]["data"]["usage"]["cost_usd"])
    later = [e for e in events[failed_at:] if e["type"] == "task_completed"]
    reported = at_failure + sum(Decimal(e["data"]["usage"]["cost_usd"]) for e in later)
    assert reported == Decimal("0.0105") * calls
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with DagsterInstance.get() as instance:
        logs = instance.all_logs(
            summary["dagster_run_ids"][1], of_type=DagsterEventType.STEP_FAILURE
        )
        (forms,) = [entry for entry in logs if entry.step_key == "forms"]
        assert forms.dagster_event is not None
        failure = forms.dagster_event.step_failure_data.user_failure_data
        assert failure is not None
        assert failure.metadata["cost_usd"].value == float(at_failure)


def test_plan_partials_of_a_replaced_answer_are_retracted(tmp_path: Path) -> None:
    good = offline_answer  # the fake's plan for the prompt
    renamed: list[bool] = []

    def answer(request: Recorded) -> Reply:
        reply = good(request)
        if request.schema_title == "PlanSpec" and not renamed:
            renamed.append(True)  # the first answer streams, then fails validation
            return Reply(reply.text.replace('"styles.css"', '"../styles.css"', 1))
        return reply

    with FakeLLMServer(AnthropicWire(), default=answer) as server:
        env = sheen_cli_env(tmp_path, **llm_env("anthropic", server))
        result = sheen_here(env, "build", PROMPT, "--json")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "succeeded", summary["error"]
    assert "plan_partial: task styles (create_file ../styles.css)" in result.stderr
    assert "plan_partial retracted: styles (the answer was replaced)" in result.stderr
