"""A follow-up change against local servers speaking the Anthropic and OpenAI wire formats: the
planner is shown the base, a one-file change costs one planning call and one task call answered
with an edit, an edit that does not apply is asked for again, and the same change again is free."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from dagster import DagsterInstance

from sheen_pipeline.providers.llm import files_validator
from sheen_pipeline.service import BuildService
from tests.providers.conftest import LLM
from tests.support.builds import build, deployed_page
from tests.support.fake_llm import Recorded, Reply, offline_answer

GREEN = "make the header dark green"
CALL_USD = Decimal("0.0105")  # 1000 input and 500 output tokens at $3 / $15 per million


def test_a_one_file_change_costs_two_calls_and_is_answered_with_an_edit(
    llm: LLM, instance: DagsterInstance
) -> None:
    base, _ = build(instance, project_id="coffee")
    assert base.status == "succeeded", base.error
    first_calls = len(llm.server.requests)
    change, _ = build(instance, prompt=GREEN, project_id="coffee", base_build_id="latest")
    assert change.status == "succeeded", change.error
    asked = llm.server.requests[first_calls:]
    assert [r.schema_title for r in asked] == ["PlanSpec", "FilesSpec"]
    planning = asked[0].text
    assert "Plan this change:" in planning and GREEN in planning
    assert "styles.css (" in planning and '<file path="index.html">' in planning
    assert "a landing page for Blue Fern Coffee" in planning  # the prompt line of the base
    answer = json.loads(offline_answer(asked[1]).text)  # what the server answered
    assert answer["files"] == [] and answer["edits"][0]["path"] == "styles.css"
    assert "--primary: #1f5f3a;" in deployed_page(change.build_id, "styles.css")
    assert change.usage.calls == 2 and change.usage.cost_usd == CALL_USD * 2

    again, _ = build(instance, prompt=GREEN, project_id="coffee", base_build_id=base.build_id)
    assert again.status == "succeeded" and again.usage.calls == 0
    assert len(llm.server.requests) == first_calls + 2  # nothing was asked again


def test_an_edit_that_does_not_apply_is_asked_again(
    llm: LLM, instance: DagsterInstance, service: BuildService
) -> None:
    base, _ = build(instance, project_id="coffee")
    assert base.status == "succeeded", base.error

    def wrong_edit(request: Recorded) -> Reply:
        assert request.schema_title == "FilesSpec"
        edit = {"path": "styles.css", "search": "no such text", "replace": "x"}
        return Reply(json.dumps({"files": [], "edits": [edit]}))

    def plan_then_wrong_edit(request: Recorded) -> Reply:
        llm.server.then(wrong_edit)  # the task's first answer, after this plan
        return llm.server.default(request)

    llm.server.then(plan_then_wrong_edit)
    change, _ = build(instance, prompt=GREEN, project_id="coffee", base_build_id="latest")
    assert change.status == "succeeded", change.error
    reask = llm.server.requests[-1].text
    assert "occurs 0 times in the file, it must occur exactly once" in reask
    assert "--primary: #1f5f3a;" in deployed_page(change.build_id, "styles.css")
    completed = [
        e for e in service.events.after(change.build_id) if e.type.value == "task_completed"
    ]
    assert [e.data["heals"] for e in completed] == [1]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"files": [], "edits": []}, r"at least one file \(or one edit\)"),
        ({"files": [], "edits": [{"path": "a.css", "search": "b", "replace": "c"}]}, "2 times"),
        ({"files": [], "edits": [{"path": "x.css", "search": "b", "replace": "c"}]}, "not a file"),
    ],
)
def test_edits_must_apply_exactly(answer: dict[str, object], problem: str) -> None:
    validate = files_validator({"a.css": "a b b"})
    with pytest.raises(ValueError, match=problem):
        validate(json.dumps(answer))


def test_edits_apply_in_order_after_whole_files() -> None:
    validate = files_validator({"a.css": "one two"})
    answer = {
        "files": [{"path": "b.css", "content": "new"}],
        "edits": [
            {"path": "a.css", "search": "two", "replace": "2"},
            {"path": "a.css", "search": "one 2", "replace": "1 2"},
            {"path": "b.css", "search": "new", "replace": "newer"},
        ],
    }
    assert validate(json.dumps(answer)) == {"a.css": "1 2", "b.css": "newer"}
