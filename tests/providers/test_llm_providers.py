"""Both real providers, unmocked (the Anthropic SDK; requests for OpenAI-compatible servers),
against local servers speaking their wire formats."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from sheen_pipeline.models import Plan, Task, parse_build_request
from sheen_pipeline.planning.dag import LadderPolicy, find_cycles
from sheen_pipeline.planning.planner import make_plan
from sheen_pipeline.providers.backoff import BACKOFF_MAX_S, backoff_s
from sheen_pipeline.providers.base import GeneratedFiles, PlanDraft, ProviderError
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.providers.prompts import task_system
from sheen_pipeline.providers.schemas import FilesSpec, PlanSpec, TaskSpec
from tests.providers.conftest import ANTHROPIC_KEY, LLM, OPENAI_KEY, llm_env
from tests.support.builds import PROMPT
from tests.support.fake_llm import (
    AnthropicWire,
    FakeLLMServer,
    OpenAIWire,
    PromptCache,
    Reply,
    Usage,
    tokens,
)

SONNET = {"input": Decimal(3), "output": Decimal(15)}


def generate(llm: LLM, task: Task, plan: Plan, context: dict[str, str]) -> GeneratedFiles:
    """A task's provider call, awaited the way a task op awaits it."""
    return anyio.run(llm.provider().generate_files, task, plan, context)


def offline_plan() -> Plan:
    request = parse_build_request(prompt=PROMPT)
    return make_plan(request, "b1", OfflineProvider(), LadderPolicy()).plan


def plan_json(tasks: tuple[Task, ...] | None = None) -> str:
    tasks = tasks if tasks is not None else offline_plan().tasks
    return PlanSpec(
        summary="A landing page", tasks=[TaskSpec.from_task(t) for t in tasks]
    ).model_dump_json()


def files_json(path: str = "styles.css", content: str = "body { color: red; }") -> str:
    return json.dumps({"files": [{"path": path, "content": content}]})


def collect_plan(llm: LLM) -> tuple[list[Task], PlanDraft]:
    *tasks, draft = llm.provider().stream_plan(parse_build_request(prompt=PROMPT))
    assert isinstance(draft, PlanDraft)
    return [t for t in tasks if isinstance(t, Task)], draft


def test_streamed_plan_reports_each_task_before_the_rest_arrives(llm: LLM) -> None:
    text = plan_json()
    first_task_end = text.index("},{") + 1  # the first task object is complete here
    received = threading.Event()
    waited: list[bool] = []

    def gate(next_chunk: int) -> None:
        if next_chunk == 1:
            waited.append(received.wait(timeout=15))

    llm.server.then(
        Reply(text, chunks=[text[:first_task_end], text[first_task_end:]], between_chunks=gate)
    )
    tasks: list[Task] = []
    for item in llm.provider().stream_plan(parse_build_request(prompt=PROMPT)):
        if isinstance(item, Task):
            tasks.append(item)
            received.set()
        else:
            draft = item
    assert waited == [True], "the first task was not reported while the stream was held open"
    assert [t.id for t in tasks] == [t.id for t in offline_plan().tasks]
    assert draft.tasks == offline_plan().tasks and draft.heals == 0


def test_plan_request_carries_model_schema_and_auth(llm: LLM) -> None:
    collect_plan(llm)
    (request,) = llm.server.requests
    assert request.body["stream"] is True
    assert request.headers["authorization"] == f"Bearer {llm.key}"
    assert PROMPT in request.text
    if llm.kind == "anthropic":
        assert request.path == "/v1/messages"
        assert request.body["model"] == "claude-sonnet-5-5"
        assert request.body["output_config"] == {
            "format": {"type": "json_schema", "schema": PlanSpec.model_json_schema()}
        }
        assert "temperature" not in request.body
    else:
        assert request.path == "/v1/chat/completions"
        assert request.body["model"] == "llama-3.3-70b"
        assert request.body["response_format"] == {
            "type": "json_schema",
            "json_schema": {
                "name": "PlanSpec",
                "schema": PlanSpec.model_json_schema(),
                "strict": True,
            },
        }
        assert request.body["stream_options"] == {"include_usage": True}


def test_task_gets_plan_and_upstream_files_with_shared_block_cached(llm: LLM) -> None:
    plan = offline_plan()
    llm.server.then(Reply(files_json("index.html", "<!DOCTYPE html><title>x</title>")))
    context = {
        "styles.css": "body { color: #2f5d50; }",
        "site.json": '{"name": "Blue Fern Coffee"}',
    }
    result = generate(llm, plan.task("index_page"), plan, context)
    assert dict(result.files) == {"index.html": "<!DOCTYPE html><title>x</title>"}
    (request,) = llm.server.requests
    user = request.body["messages"][-1]["content"]
    assert '"id": "index_page"' in user and "body { color: #2f5d50; }" in user
    if llm.kind == "anthropic":
        instructions, shared = request.body["system"]
        assert instructions["cache_control"] == {"type": "ephemeral"}  # cached across builds
        assert shared["cache_control"] == {"type": "ephemeral"}
        assert all(f'"id": "{t.id}"' in shared["text"] for t in plan.tasks)
        assert PROMPT in shared["text"]
        assert request.body["output_config"]["format"]["schema"] == FilesSpec.model_json_schema()
    else:
        assert request.body["messages"][0]["role"] == "system"
        assert '"id": "page_metadata"' in request.body["messages"][0]["content"]


def test_cost_is_exact_from_returned_usage_including_cache_tokens(llm: LLM) -> None:
    plan = offline_plan()
    usage = Usage(input=1200, output=800, cache_write=3000, cache_read=5000)
    if llm.kind == "openai":
        usage.cache_write = 0  # the OpenAI wire format has no cache writes
    llm.server.then(Reply(files_json(), usage=usage))
    result = generate(llm, plan.task("styles"), plan, {})
    expected = (
        usage.input * SONNET["input"]
        + usage.output * SONNET["output"]
        + usage.cache_write * SONNET["input"] * Decimal("1.25")
        + usage.cache_read * SONNET["input"] * Decimal("0.1")
    ) / 1_000_000
    assert result.usage.cost_usd == expected
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1200, 800)
    assert (result.usage.cache_read_tokens, result.usage.cache_write_tokens) == (
        5000,
        usage.cache_write,
    )


def test_unknown_model_cost_is_unknown_not_zero(llm: LLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEEN_MODEL", "mystery-model-1")
    plan = offline_plan()
    result = generate(llm, plan.task("styles"), plan, {})
    assert result.usage.cost_usd is None
    assert result.usage.input_tokens == 1000


def test_overload_is_retried_with_backoff(llm: LLM) -> None:
    overloaded = Reply(
        "Overloaded", status=529, error_type="overloaded_error", headers={"retry-after": "0.05"}
    )
    llm.server.then(overloaded, overloaded)
    plan = offline_plan()
    result = generate(llm, plan.task("styles"), plan, {})
    assert "styles.css" in result.files
    assert len(llm.server.requests) == 3


def test_retries_are_bounded(llm: LLM) -> None:
    overloaded = Reply(
        "Overloaded", status=529, error_type="overloaded_error", headers={"retry-after": "0.01"}
    )
    llm.server.then(*[overloaded] * 3)
    plan = offline_plan()
    with pytest.raises(ProviderError) as error:
        generate(llm, plan.task("styles"), plan, {})
    assert error.value.retryable
    assert len(llm.server.requests) == 3  # 1 try + SHEEN_LLM_MAX_RETRIES=2


@pytest.mark.parametrize("status", [400, 401, 403])
def test_client_errors_fail_fast_and_never_show_the_key(llm: LLM, status: int) -> None:
    llm.server.then(
        Reply(f"invalid key {llm.key}", status=status, error_type="authentication_error")
    )
    plan = offline_plan()
    with pytest.raises(ProviderError) as error:
        generate(llm, plan.task("styles"), plan, {})
    assert not error.value.retryable
    assert str(status) in str(error.value)
    assert llm.key not in str(error.value) and "[REDACTED]" in str(error.value)
    assert len(llm.server.requests) == 1


def test_fenced_json_with_trailing_comma_is_repaired_locally(llm: LLM) -> None:
    llm.server.then(Reply('```json\n{"files": [{"path": "styles.css", "content": "a {}"},],}\n```'))
    plan = offline_plan()
    result = generate(llm, plan.task("styles"), plan, {})
    assert dict(result.files) == {"styles.css": "a {}"}
    assert result.heals == 1 and len(llm.server.requests) == 1


def test_invalid_answer_is_re_asked_with_the_error(llm: LLM) -> None:
    llm.server.then(Reply('{"files": [{"path": "../escape.css"}]}'))
    plan = offline_plan()
    result = generate(llm, plan.task("styles"), plan, {})
    assert "styles.css" in result.files and result.heals == 1
    _first, second = llm.server.requests
    messages = second.body["messages"]
    assert messages[-2] == {
        "role": "assistant",
        "content": '{"files": [{"path": "../escape.css"}]}',
    }
    assert "files.0.content: Field required" in messages[-1]["content"]
    assert result.usage.input_tokens == 2000  # both calls counted


def test_healing_gives_up_after_two_re_asks_saying_what_was_wrong(llm: LLM) -> None:
    llm.server.then(*[Reply('{"files": []}')] * 3)
    plan = offline_plan()
    with pytest.raises(
        ProviderError, match=r"task styles: .* after 2 re-asks: files: at least one file"
    ):
        generate(llm, plan.task("styles"), plan, {})
    assert len(llm.server.requests) == 3


def test_truncated_plan_is_healed(llm: LLM) -> None:
    text = plan_json()
    llm.server.then(Reply(text[: text.rindex("}]")] + "},"))  # cut after the last task, mid-array
    _, draft = collect_plan(llm)
    assert [t.id for t in draft.tasks] == [t.id for t in offline_plan().tasks]
    assert draft.heals == 1


def test_a_cycle_from_the_model_goes_down_the_ladder(llm: LLM) -> None:
    tasks = offline_plan().tasks
    first = tasks[0].model_copy(
        update={"input": tasks[0].input.model_copy(update={"dependencies": ("page_metadata",)})}
    )
    llm.server.then(Reply(plan_json((first, *tasks[1:]))))
    request = parse_build_request(prompt=PROMPT)
    outcome = make_plan(request, "b1", llm.provider(), LadderPolicy(max_edges_to_drop=0))
    assert [step.rung for step in outcome.plan.recovery] == ["A", "B"]
    assert not find_cycles(outcome.plan.tasks)
    assert [r.schema_title for r in llm.server.requests] == ["PlanSpec", "DependenciesSpec"]
    assert outcome.usage.input_tokens == 2000


def test_a_plan_cut_off_at_max_tokens_is_asked_for_anew_not_repaired(llm: LLM) -> None:
    text = plan_json()
    three_of_five = text[: text.index('{"id":"index_page"')]
    llm.server.then(Reply(three_of_five, stop="max_tokens"), Reply(text))
    _, draft = collect_plan(llm)
    assert [t.id for t in draft.tasks] == [t.id for t in offline_plan().tasks]
    assert draft.heals == 1
    again = llm.server.requests[1].body["messages"]
    assert "assistant" not in [m["role"] for m in again]  # the cut-off answer is not sent back
    assert "cut off at the output length limit" in again[-1]["content"]


def test_a_page_cut_off_at_max_tokens_is_never_deployed(llm: LLM) -> None:
    plan = offline_plan()
    page = "<!DOCTYPE html><title>x</title><form><h2>Join our newsletter</h2></form>"
    cut = files_json("index.html", page)[:70]  # ends mid-tag, as `<h2>Join our newsletter</h2`
    llm.server.then(Reply(cut, stop="max_tokens"), Reply(files_json("index.html", page)))
    result = generate(llm, plan.task("index_page"), plan, {})
    assert dict(result.files) == {"index.html": page} and result.heals == 1


def test_an_answer_that_is_always_cut_off_fails_clearly(llm: LLM) -> None:
    plan = offline_plan()
    cut = Reply(files_json()[:30], stop="max_tokens")
    llm.server.then(cut, cut, cut)
    with pytest.raises(ProviderError, match="cut off at the output token limit") as failure:
        generate(llm, plan.task("styles"), plan, {})
    assert not failure.value.retryable
    assert len(llm.server.requests) == 3


def test_an_overload_inside_the_stream_is_retried_without_repeating_tasks(llm: LLM) -> None:
    text = plan_json()
    llm.server.then(Reply(text, stream_error="overloaded_error"), Reply(text))
    shown, draft = collect_plan(llm)
    expected = [t.id for t in offline_plan().tasks]
    assert [t.id for t in draft.tasks] == expected
    assert [t.id for t in shown] == expected  # each task reported once across both streams
    assert len(llm.server.requests) == 2


def test_a_permanent_error_inside_the_stream_fails_at_once(llm: LLM) -> None:
    llm.server.then(Reply(plan_json(), stream_error="invalid_request_error"))
    with pytest.raises(ProviderError, match="invalid_request_error inside the stream") as failure:
        collect_plan(llm)
    assert not failure.value.retryable
    assert len(llm.server.requests) == 1


def test_an_empty_answer_is_asked_again_without_an_empty_turn(llm: LLM) -> None:
    plan = offline_plan()
    llm.server.then(Reply(""), Reply(files_json()))
    result = generate(llm, plan.task("styles"), plan, {})
    assert dict(result.files) == {"styles.css": "body { color: red; }"} and result.heals == 1
    again = llm.server.requests[1].body["messages"]
    assert "assistant" not in [m["role"] for m in again]
    assert "did not pass validation" in again[-1]["content"]


def test_a_refusal_is_a_clear_permanent_failure(llm: LLM) -> None:
    plan = offline_plan()
    llm.server.then(Reply("I can't help with that.", stop="refusal"))
    with pytest.raises(ProviderError, match="the model refused to answer: I can't help") as failure:
        generate(llm, plan.task("styles"), plan, {})
    assert not failure.value.retryable
    assert len(llm.server.requests) == 1


def test_a_server_that_reports_no_usage_gives_an_unknown_cost(
    sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = offline_plan()
    with FakeLLMServer(OpenAIWire()) as server:
        for name, value in llm_env("openai", server).items():
            monkeypatch.setenv(name, value)
        server.then(Reply(files_json(), reports_usage=False))
        llm = LLM("openai", server, OPENAI_KEY)
        result = generate(llm, plan.task("styles"), plan, {})
    assert result.usage.cost_usd is None and result.usage.total_tokens == 0


def test_the_stable_prefix_is_cached_and_the_task_comes_last(
    sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = offline_plan()
    instructions, shared = task_system(plan)
    assert instructions.cache and shared.cache
    assert tokens(instructions.text) >= PromptCache.MIN_TOKENS  # cached across builds too
    with FakeLLMServer(AnthropicWire(), prompt_cache=PromptCache()) as server:
        for name, value in llm_env("anthropic", server).items():
            monkeypatch.setenv(name, value)
        llm = LLM("anthropic", server, ANTHROPIC_KEY)
        first = generate(llm, plan.task("config"), plan, {})
        second = generate(llm, plan.task("styles"), plan, {})
    prefix = tokens(instructions.text + shared.text)
    assert first.usage.cache_write_tokens == prefix and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == prefix and second.usage.cache_write_tokens == 0
    assert "Do this task" not in instructions.text + shared.text


def test_retry_after_is_read_on_both_paths_and_capped(
    llm: LLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_LLM_MAX_RETRIES", "0")
    plan = offline_plan()
    limited = Reply("slow down", status=429, error_type="rate_limit_error")
    llm.server.then(replace(limited, headers={"retry-after": "20"}))
    with pytest.raises(ProviderError) as failure:
        generate(llm, plan.task("styles"), plan, {})
    assert failure.value.retryable and failure.value.retry_after == "20"
    assert backoff_s(0, "20") <= BACKOFF_MAX_S  # a 20 s Retry-After waits 8 s at most
    waits = [backoff_s(0, "1") for _ in range(200)]
    assert min(waits) >= 1.0 and max(waits) <= 1.25  # jitter never shortens the server's wait
