"""Budgets hold before money is spent: a call over budget is never made, reservations keep racing
calls of one user under the limit, and a plan whose estimate does not fit is refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import DagsterInstance
from sqlalchemy import func, select

from sheen_pipeline.budgets import (
    BudgetBook,
    BudgetExceeded,
    Payer,
    UnpricedUnderBudget,
    paying,
    spent_or_reserved,
)
from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.config.budget_limits import Budgets, load_budgets
from sheen_pipeline.events.types import EventType
from sheen_pipeline.models import TokenUsage, parse_build_request
from sheen_pipeline.providers import select_provider
from sheen_pipeline.providers.llm import estimate_tokens
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.providers.prompts import SystemBlock
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.ledger import Entry, Ledger
from sheen_pipeline.store.tables import build_events, provider_calls
from tests.providers.conftest import llm_env
from tests.support.builds import PROMPT, build
from tests.support.fake_llm import (
    AnthropicWire,
    FakeLLMServer,
    Recorded,
    Reply,
    Usage,
    offline_answer,
)
from tests.support.processes import SHEEN, running, sheen, sheen_cli_env, sheen_forked
from tests.support.spending import spend
from tests.support.waiting import wait_for

START_OF_TIME = datetime(2026, 1, 1, tzinfo=UTC)
ANN = Payer("bann", "default", "ann", "task", "styles")


def test_budgets_read_defaults_and_specific_limits() -> None:
    budgets = load_budgets(
        '{"default": {"user": {"day": 5}, "project": {"month": 100}},'
        ' "users": {"ann": {"day": 1, "month": 10}}}'
    )
    names = {(b.name, b.limit_usd) for b in budgets.for_owner("coffee", "ann")}
    assert names == {
        ("user ann per day", Decimal(1)),
        ("user ann per month", Decimal(10)),
        ("project coffee per month", Decimal(100)),
    }
    assert {b.name for b in budgets.for_owner("coffee", "bob")} == {
        "user bob per day",
        "project coffee per month",
    }
    assert not load_budgets("")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{", "not JSON"),
        ('{"teams": {}}', "'default', 'users', 'projects' and 'allow_unpriced'"),
        ('{"users": {"ann": {"week": 1}}}', "user ann"),
        ('{"default": {"user": {"day": -1}}}', "negative"),
        ('{"users": {"ann": {"day": "lots"}}}', "user ann has a limit that is not a number"),
        ('{"allow_unpriced": "yes"}', "'allow_unpriced' must be true or false"),
    ],
)
def test_a_bad_budget_table_is_refused_at_load_naming_the_problem(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=f"SHEEN_BUDGETS.*{named}"):
        Settings.from_env({"SHEEN_BUDGETS": text})


def test_racing_reservations_never_overshoot(database_url: str) -> None:
    book = BudgetBook(
        engine_for(database_url), Budgets(specific={"user": {"ann": {"day": Decimal(1)}}})
    )
    start = threading.Barrier(4)
    granted: list[bool] = []

    def reserve_ten() -> None:
        start.wait(timeout=30)
        for _ in range(10):
            try:
                book.reserve(ANN, Decimal("0.08"))
                granted.append(True)
            except BudgetExceeded:
                granted.append(False)

    threads = [threading.Thread(target=reserve_ten) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert granted.count(True) == 12  # 12 x 0.08 = 0.96; a 13th would pass 1
    (budget,) = book.budgets.for_owner("default", "ann")
    with book.engine.connect() as conn:
        assert spent_or_reserved(conn, budget, budget.period_start(datetime.now(UTC))) == Decimal(
            "0.96"
        )


def budget_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.fixture
def priced_server(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """A Messages API whose every answer costs $0.0105; calls may ask for 2000 tokens."""
    with FakeLLMServer(AnthropicWire()) as server:
        for name, value in llm_env("anthropic", server).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SHEEN_MAX_TOKENS", "2000")
        monkeypatch.setenv("SHEEN_TASK_RETRIES", "0")
        yield server


def test_a_budget_stops_the_next_call_before_it_is_made(
    priced_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"users": {"ann": {"day": 0.05}}}))
    settings = Settings.from_env()
    provider = select_provider(settings)
    request = parse_build_request(prompt=PROMPT, user_id="ann")
    plan = BuildService(settings, provider=OfflineProvider()).plan("bann", request).plan
    task = plan.tasks[0]
    with paying(ANN):
        asyncio.run(provider.generate_files(task, plan, {}))  # fits: $0.0105 spent
        spend(settings, user_id="ann", usd="0.03")  # elsewhere: $0.0405 spent, $0.0095 left
        with pytest.raises(BudgetExceeded, match=r"user ann per day is \$0.05"):
            asyncio.run(provider.generate_files(task, plan, {}))
    assert len(priced_server.requests) == 1  # the refused call never reached the server


def test_two_racing_callers_of_one_user_stay_within_the_budget(
    priced_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"users": {"ann": {"day": 0.1}}}))
    settings = Settings.from_env()
    request = parse_build_request(prompt=PROMPT, user_id="ann")
    plan = BuildService(settings, provider=OfflineProvider()).plan("bann", request).plan
    start = threading.Barrier(2)
    refused: list[BudgetExceeded] = []

    def call_until_refused() -> None:
        provider = select_provider(settings)
        start.wait(timeout=30)
        with paying(ANN):
            while True:
                try:
                    asyncio.run(provider.generate_files(plan.tasks[0], plan, {}))
                except BudgetExceeded as error:
                    refused.append(error)
                    return

    threads = [threading.Thread(target=call_until_refused) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(refused) == 2
    report = BuildService(settings).cost_report(START_OF_TIME, datetime.now(UTC))
    assert report.totals.cost_usd <= Decimal("0.1")
    assert report.totals.calls == len(priced_server.requests)  # every call made is billed


def test_an_unpriced_model_under_a_budget_is_refused_unless_the_budgets_allow_it(
    priced_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_MODEL", "claude-unpriced-1")
    limits = {"users": {"ann": {"day": 0}}}
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps(limits))
    settings = Settings.from_env()
    request = parse_build_request(prompt=PROMPT, user_id="ann")
    plan = BuildService(settings, provider=OfflineProvider()).plan("bann", request).plan
    with paying(ANN), pytest.raises(UnpricedUnderBudget, match="price in SHEEN_PRICES"):
        asyncio.run(select_provider(settings).generate_files(plan.tasks[0], plan, {}))
    assert priced_server.requests == []  # refused before it was sent
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({**limits, "allow_unpriced": True}))
    settings = Settings.from_env()
    with paying(ANN):
        asyncio.run(select_provider(settings).generate_files(plan.tasks[0], plan, {}))
    report = BuildService(settings).cost_report(START_OF_TIME, datetime.now(UTC))
    assert len(priced_server.requests) == 1 and report.totals.unpriced == 1


def test_calls_whose_answers_were_asked_again_are_recorded_as_rejected(
    priced_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invalid answer, then one longer than a 2000-token answer can be (8 characters a
    token), then a good one: all three paid, the first two `rejected`; the over-long answer is
    not sent back (a build's estimate counts on prompts that never carry one)."""
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"users": {"ann": {"day": 1}}}))
    settings = Settings.from_env()
    request = parse_build_request(prompt=PROMPT, user_id="ann")
    plan = BuildService(settings, provider=OfflineProvider()).plan("bann", request).plan
    over_long = json.dumps({"files": [{"path": "styles.css", "content": "a" * 16_000}]})
    priced_server.then(Reply('{"files": []}'), Reply(over_long))
    with paying(ANN):
        asyncio.run(select_provider(settings).generate_files(plan.tasks[0], plan, {}))
    third = json.dumps(priced_server.requests[2].body["messages"])
    assert "aaaa" not in third and "characters long, over 16000" in third
    with engine_for(settings.database_url).connect() as conn:
        outcomes = conn.execute(
            select(provider_calls.c.outcome).order_by(provider_calls.c.created_at)
        ).scalars()
        assert list(outcomes) == ["rejected", "rejected", "ok"]


def test_planning_refuses_a_build_whose_estimate_does_not_fit(
    priced_server: FakeLLMServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"default": {"user": {"day": 0.05}}}))
    outcome, _ = build(instance)
    assert outcome.status == "failed"
    assert outcome.error is not None and "admission refused: budget exceeded" in outcome.error
    assert [r.schema_title for r in priced_server.requests] == ["PlanSpec"]  # no task call
    events = BuildService.from_env().events.after(outcome.build_id)
    generated = next(e for e in events if e.type is EventType.PLAN_GENERATED)
    estimate = Decimal(generated.data["estimated_cost_usd"])
    exceeded = next(e for e in events if e.type is EventType.BUDGET_EXCEEDED)
    assert exceeded.data["budget"] == "user anonymous per day"
    assert Decimal(exceeded.data["needed_usd"]) == estimate.quantize(Decimal("0.000001"))


def long_answer(request: Recorded) -> Reply:
    """A well-behaved answer of 1000 tokens in and out: $0.018 a call."""
    return replace(offline_answer(request), usage=Usage(input=1000, output=1000))


def test_a_call_paid_by_a_worker_killed_before_it_reported_is_in_the_builds_total(
    priced_server: FakeLLMServer, instance: DagsterInstance
) -> None:
    """At-least-once delivery: a worker's meter wrote a task call to the ledger, then the worker
    was killed before its step reported, and the task ran again elsewhere. The build's total
    (record, `sheen build --json`, build_completed) is the ledger's sum, that call included."""
    settings = Settings.from_env()
    lost = TokenUsage(input_tokens=1000, output_tokens=1000, cost_usd=Decimal("0.018"), calls=1)
    killed: list[str] = []

    def paid_once_more(request: Recorded) -> Reply:
        if request.schema_title != "PlanSpec" and not killed:
            ((build_id, _plan),) = BuildService(settings).store.recent_plans(1)
            entry = Entry(build_id, "default", "anonymous", "anthropic", "m", "task", "ok", lost)
            Ledger(settings.database_url).record(entry)
            killed.append(build_id)
        return long_answer(request)

    priced_server.default = paid_once_more
    outcome, _ = build(instance)
    assert outcome.status == "succeeded", outcome.error
    total = Ledger(settings.database_url).usage_of(outcome.build_id)
    assert total is not None and total.calls == len(priced_server.requests) + 1
    assert outcome.usage == total
    events = BuildService(settings).events.after(outcome.build_id)
    completed = next(e for e in events if e.type is EventType.BUILD_COMPLETED)
    assert Decimal(completed.data["usage"]["cost_usd"]) == total.cost_usd


def as_metered(request: Recorded) -> int:
    """The request's tokens as the meter counts them before sending it."""
    system = [SystemBlock(block["text"]) for block in request.body.get("system", [])]
    messages = [
        {"role": m["role"], "content": m["content"]}
        if isinstance(m["content"], str)
        else {"role": m["role"], "content": "".join(p.get("text", "") for p in m["content"])}
        for m in request.body["messages"]
    ]
    return estimate_tokens(system, messages)


def test_a_builds_calls_at_their_worst_stay_within_the_estimate_held_at_admission(
    priced_server: FakeLLMServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each task's first answer is rejected (its re-ask carries it back), and its second is
    nearly as long as an answer may be (15,000 characters, of 2000 tokens at 8 characters each;
    room is left for the task that rewrites a page it is shown), so prompts grow as large as a
    build's can. The calls' worst cases, as the meter reserves them, add up to no more than the
    estimate: the build is never starved of what it was admitted with."""
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"default": {"user": {"day": 100}}}))
    rejected: set[str] = set()

    def longest(request: Recorded) -> Reply:
        if request.schema_title == "PlanSpec":
            return long_answer(request)
        task = request.body["messages"][0]["content"]
        task = task if isinstance(task, str) else json.dumps(task)
        if task not in rejected:
            rejected.add(task)
            return Reply("not an answer", usage=Usage(input=1000, output=1000))
        files = json.loads(offline_answer(request).text)
        padding = 15_000 - len(json.dumps(files))
        files["files"][0]["content"] += " " * padding
        return Reply(json.dumps(files), usage=Usage(input=1000, output=1000))

    priced_server.default = longest
    outcome, _ = build(instance)
    assert outcome.status == "succeeded", outcome.error
    events = BuildService.from_env().events.after(outcome.build_id)
    generated = next(e for e in events if e.type is EventType.PLAN_GENERATED)
    estimate = Decimal(generated.data["estimated_cost_usd"])
    provider = select_provider(Settings.from_env())
    task_calls = [r for r in priced_server.requests if r.schema_title != "PlanSpec"]
    assert len(task_calls) == 2 * len(generated.data["tasks"])
    worst = sum(provider.worst_case_usd(as_metered(r)) or Decimal(0) for r in task_calls)
    assert worst <= estimate


def test_four_builds_of_one_user_under_a_budget_for_two_two_finish_two_are_refused_unpaid(
    priced_server: FakeLLMServer, database_url: str, tmp_path: Path
) -> None:
    """Four `sheen build` processes at once, as four run workers would be. Each plan call costs
    $0.018; each build's 5 tasks cost $0.09 and are estimated at $1.66 to $2.03 (held at
    admission: each call and its two re-asks at their worst, with the dependencies' answers
    shown at their longest); $4 holds four plans and any two builds' estimates, not three.
    Task answers wait until two builds were refused, so that no admitted build ends (giving its
    hold back) before the last admission."""
    env = sheen_cli_env(
        tmp_path,
        **llm_env("anthropic", priced_server),
        SHEEN_DATABASE_URL=database_url,
        SHEEN_MAX_TOKENS="2000",
        SHEEN_TASK_RETRIES="0",
        SHEEN_BUDGETS=json.dumps({"users": {"ann": {"day": 4}}}),
    )

    def refusals() -> int:
        kind = build_events.c.type == EventType.BUDGET_EXCEEDED.value
        with engine_for(database_url).connect() as conn:
            return int(conn.execute(select(func.count()).where(kind)).scalar_one())

    def after_every_admission(request: Recorded) -> Reply:
        if request.schema_title != "PlanSpec":
            with contextlib.suppress(AssertionError):  # then the statuses tell what went wrong
                wait_for(lambda: refusals() >= 2, 120, "two admissions refused")
        return long_answer(request)

    priced_server.default = after_every_admission
    outcomes: list[dict[str, object]] = []  # on a fresh DAGSTER_HOME: made once, under a lock
    crashed: list[str] = []
    start = threading.Barrier(4)

    def race(prompt: str) -> None:
        start.wait(timeout=30)
        result = sheen_forked(env, "build", prompt, "--user-id", "ann", "--json")
        lines = result.stdout.strip().splitlines()
        if lines:
            outcomes.append(json.loads(lines[-1]))
        else:
            crashed.append(result.stderr[-2000:])

    prompts = (PROMPT, "a blog about tea", "a todo app", "a dashboard of monthly sales")
    threads = [threading.Thread(target=race, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert crashed == []
    statuses = sorted(str(o["status"]) for o in outcomes)
    assert statuses == ["failed", "failed", "succeeded", "succeeded"], outcomes
    refused = [o for o in outcomes if o["status"] == "failed"]
    assert all("budget exceeded: user ann per day" in str(o["error"]) for o in refused)
    task_calls = [r for r in priced_server.requests if r.schema_title != "PlanSpec"]
    assert len(task_calls) == 2 * 5  # the refused builds never called for a task
    settings = Settings.from_env(env)
    service = BuildService(settings)
    for o in refused:
        kinds = [e.type for e in service.events.after(str(o["build_id"]))]
        assert EventType.BUDGET_EXCEEDED in kinds  # every refusal is an event
    report = service.cost_report(START_OF_TIME, datetime.now(UTC))
    assert report.totals.cost_usd <= Decimal(4)
    assert report.totals.calls == len(priced_server.requests)  # every call made is billed
    assert service.budgets.over("default", "ann") is None  # nothing is held once they ended


def test_a_builds_hold_counts_until_it_ends_however_it_ends(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held at admission, drawn on by its calls, released when the build fails (as the
    heartbeat check fails a killed build) or succeeds; not an hour later. The build id is the
    main app's kind (a UUID, longer than a reservation id)."""
    monkeypatch.setenv("SHEEN_BUDGETS", json.dumps({"users": {"ann": {"day": 1}}}))
    service = BuildService.from_env()
    held = "0b9f6a4e-8d2c-4f3a-9e71-5c6d7e8f9a0b"
    service.store.create_build(held, parse_build_request(prompt="a site", user_id="ann"))
    service.budgets.admit(held, "default", "ann", Decimal("0.7"))
    assert service.budgets.over("default", "ann", Decimal("0.4")) is not None  # 0.7 is held
    payer = Payer(held, "default", "ann", "task", "t1")
    call = service.budgets.reserve(payer, Decimal("0.5"))  # drawn from the hold: no new check
    assert call.drawn_nusd == 500_000_000
    with pytest.raises(BudgetExceeded):  # another build cannot take what this one holds
        service.budgets.admit("bother", "default", "ann", Decimal("0.4"))
    service.fail(held, "the process running the build stopped")
    assert service.budgets.over("default", "ann", Decimal("1")) is None  # all of it released


def test_a_killed_builds_hold_is_released_when_the_heartbeat_check_ends_it(
    priced_server: FakeLLMServer, tmp_path: Path
) -> None:
    """SIGKILLed with a task call in flight, a build holds its estimate until the heartbeat check
    fails it (SHEEN_BUILD_HEARTBEAT_TIMEOUT_S after its last beat), then nothing: not an hour
    later. The landing page's estimate is $1.67; $4.50 more fits a $5 budget only without it."""
    in_flight, answer = threading.Event(), threading.Event()

    def held_task(request: Recorded) -> Reply:
        if request.schema_title != "PlanSpec":
            in_flight.set()
            answer.wait(timeout=120)
        return long_answer(request)

    priced_server.default = held_task
    env = sheen_cli_env(
        tmp_path,
        **llm_env("anthropic", priced_server),
        SHEEN_MAX_TOKENS="2000",
        SHEEN_BUDGETS=json.dumps({"users": {"ann": {"day": 5}}}),
        SHEEN_BUILD_HEARTBEAT_TIMEOUT_S="3",
    )
    service = BuildService(Settings.from_env(env))
    try:
        with running([SHEEN, "build", PROMPT, "--user-id", "ann"], env, tmp_path / "log") as cli:
            wait_for(in_flight.is_set, 60, "a task call of the build")
            assert service.budgets.over("default", "ann", Decimal("4.5")) is not None  # held
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait(10)
    finally:
        answer.set()
    ((build_id, _plan),) = service.store.recent_plans(10)
    followed = sheen(env, "events", build_id, "--follow", "--json")  # the heartbeat check ends it
    last = json.loads(followed.stdout.splitlines()[-1])
    assert last["type"] == "build_failed" and "no heartbeat since" in last["data"]["reason"]
    assert service.budgets.over("default", "ann", Decimal("4.9")) is None  # nothing is held
