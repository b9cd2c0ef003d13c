"""`sheen eval` and the eval job: cases built through the normal pipeline against a local model
server that plays a good app for some requests and a subtly broken one for others; the hidden
steps, taken in a real browser, find exactly the broken ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import DagsterInstance

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.evals import eval_key, eval_suite
from sheen_pipeline.evals.saved import load_report
from sheen_pipeline.evals.suite import SuiteError, load_suite
from sheen_pipeline.runs.evaluate import EvalOrder, evaluate
from sheen_pipeline.store.ledger import Ledger
from tests.providers.conftest import llm_env
from tests.support.fake_llm import AnthropicWire, FakeLLMServer, Recorded, Reply, offline_answer

FORM_STEPS = """
      - visit: /
      - fill: {target: Name, value: Ada Lovelace}
      - fill: {target: Email, value: ada@example.com}
      - click: Sign up
      - expect_text: Thank you"""
TODO_STEPS = """
      - visit: /
      - fill: {target: New item, value: Water the plants}
      - click: Add
      - visit: /
      - expect_text: Water the plants"""
SUITE = "cases:" + "".join(
    f"\n  - id: {case_id}\n    prompt: {prompt}\n    steps:{steps}"
    for case_id, prompt, steps in (
        ("good-form", "a landing page for Harbor Books with a signup form", FORM_STEPS),
        ("form-never-confirms", "a landing page for Quiet Tea with a signup form", FORM_STEPS),
        ("good-todo", "a todo app for Ada", TODO_STEPS),
        ("todo-forgets", "a todo app for Ben", TODO_STEPS),
    )
)
# What the model gets subtly wrong, by the request it answers: the form's script never says
# "Thank you", the todo's never stores its items.
BREAKAGE = {
    "Quiet Tea": ("Thank you! ", "Noted. "),
    "for Ben": ("localStorage.setItem(KEY, JSON.stringify(items));", "void 0;"),
}


def playing(request: Recorded) -> Reply:
    answer = offline_answer(request)
    for asked, (good, broken) in BREAKAGE.items():
        if asked in request.text:
            return Reply(answer.text.replace(good, broken), answer.usage)
    return answer


@pytest.fixture
def model(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer(AnthropicWire(), default=playing) as server:
        for name, value in llm_env("anthropic", server).items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.yaml"
    path.write_text(SUITE)
    return path


def test_the_broken_apps_and_only_they_fail_with_the_failing_step(
    model: FakeLLMServer, suite: Path, instance: DagsterInstance
) -> None:
    lines: list[str] = []
    report = evaluate(instance, EvalOrder(suite=str(suite)), lines.append)
    outcome = {case.case_id: case for case in report.cases}
    assert sorted(c for c, r in outcome.items() if not r.passed) == [
        "form-never-confirms",
        "todo-forgets",
    ]
    assert all(r.build_status == "succeeded" for r in outcome.values())  # they build fine
    assert outcome["form-never-confirms"].failed_step is not None
    assert (
        "step 5 of 5 failed: expect_text 'Thank you'" in outcome["form-never-confirms"].failed_step
    )
    assert "step 5 of 5 failed: expect_text 'Water the plants'" in str(
        outcome["todo-forgets"].failed_step
    )
    assert (outcome["todo-forgets"].steps_passed, outcome["good-todo"].steps_passed) == (4, 5)
    totals = report.totals()
    assert (totals["cases_passed"], totals["pass_rate"]) == (2, 0.5)
    assert totals["step_pass_rate"] == round(18 / 20, 4)
    ledger = Ledger(Settings.from_env().database_url)
    spent = sum((ledger.usage_of(c.build_id).cost_usd for c in report.cases), Decimal(0))  # type: ignore[union-attr,misc]
    assert Decimal(str(totals["cost_usd"])) == spent and spent > 0
    assert totals["cost_per_passing_app_usd"] == float(spent / 2)
    assert any(line.endswith("form-never-confirms: building") for line in lines)  # progress
    kept = load_report(Settings.from_env().home, report.eval_id)
    assert kept.as_json() == report.as_json()


def test_the_eval_job_records_the_report_on_the_models_partition(
    model: FakeLLMServer, suite: Path, instance: DagsterInstance
) -> None:
    config = {"suite": str(suite), "cases": ["good-form"]}
    result = eval_suite.execute_in_process(
        instance=instance, run_config={"ops": {"evaluate_suite": {"config": config}}}
    )
    assert result.success
    event = instance.get_latest_materialization_event(eval_key("mixed"))
    assert event is not None and event.asset_materialization is not None
    recorded = event.asset_materialization
    model_id = Settings.from_env().model_calls.model or "claude-sonnet-5-5"
    assert recorded.partition == model_id
    assert model_id in instance.get_dynamic_partitions("eval_models")
    metadata = {name: value.value for name, value in recorded.metadata.items()}
    report = load_report(Settings.from_env().home, str(metadata["eval_id"]))
    numbers = {k: v for k, v in report.totals().items() if v is not None}
    assert {k: metadata[k] for k in numbers} == numbers  # the CLI's JSON, to the number
    assert metadata["pass_rate"] == 1.0 and "| good-form | 5/5 | succeeded |" in str(
        metadata["cases"]
    )


def test_a_budget_of_nothing_starts_no_case_and_says_so(
    suite: Path, instance: DagsterInstance, sheen_home: Path
) -> None:
    report = evaluate(instance, EvalOrder(suite=str(suite), budget_usd=Decimal(0)), print)
    assert report.cases == [] and len(report.not_run) == 4
    assert "4 cases not run: the next would not fit the $0 budget" in report.summary()


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ("      - hover: Sign up", "case 'one', line 7: unknown step kind 'hover'"),
        ("      - click: {target: Add, colour: red}", "case 'one', line 7: click"),
        ("      - visit: /\n        click: Add", "case 'one', line 7: a step is one action"),
    ],
)
def test_a_suite_with_a_bad_step_is_refused_naming_the_case_and_line(
    tmp_path: Path, step: str, said: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "cases:\n  - id: one\n    prompt: a todo app\n    steps:\n      - visit: /\n"
        "      - expect_text: Todo\n" + step + "\n"
    )
    with pytest.raises(SuiteError, match=said):
        load_suite(path)


def test_the_core_suite_is_valid_and_covers_every_kind() -> None:
    core = load_suite(Path("evals/core.yaml"))
    assert len(core.cases) >= 30
    assert all(2 <= len(case.steps) <= 6 for case in core.cases)
    assert {case.request.framework for case in core.cases} == {None, "react"}
    assert json.dumps([c.id for c in core.cases])  # ids are plain strings
