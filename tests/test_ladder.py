"""Plan checks and each rung of the cycle-recovery ladder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sheen_pipeline.models import (
    PlanInvalid,
    Task,
    TaskInput,
    TaskType,
    TokenUsage,
    check_tasks,
    parse_build_request,
)
from sheen_pipeline.planning.dag import (
    LadderPolicy,
    PlanBlocked,
    PlanCyclic,
    find_cycles,
    resolve_cycles,
)
from sheen_pipeline.planning.planner import make_plan
from sheen_pipeline.providers.base import DependencyRepair, GeneratedFiles, PlanDraft


def task(task_id: str, *deps: str, priority: int = 3) -> Task:
    return Task(
        id=task_id,
        type=TaskType.CREATE_FILE,
        name=task_id,
        description=task_id,
        priority=priority,
        input=TaskInput(prompt="p", target_path=f"{task_id}.html", dependencies=deps),
    )


def deps(tasks: tuple[Task, ...]) -> dict[str, tuple[str, ...]]:
    return {t.id: t.input.dependencies for t in tasks}


def never_asked(_tasks: tuple[Task, ...], _cycles: list[list[str]]) -> tuple[Task, ...]:
    raise AssertionError("the provider must not be asked")


def test_check_tasks_names_every_problem() -> None:
    with pytest.raises(PlanInvalid) as error:
        check_tasks([task("a", "ghost"), task("a"), task("build_site")])
    message = str(error.value)
    assert "duplicate task id 'a'" in message
    assert "task 'a' depends on unknown task 'ghost'" in message
    assert "task id 'build_site' is reserved" in message
    with pytest.raises(PlanInvalid, match="plan has no tasks"):
        check_tasks([])


def test_acyclic_plan_passes_untouched() -> None:
    tasks = (task("a"), task("b", "a"), task("c", "a", "b"))
    outcome = resolve_cycles(tasks, LadderPolicy(), never_asked)
    assert outcome.tasks == tasks and outcome.steps == ()


def test_self_dependency_is_a_cycle_of_one() -> None:
    assert find_cycles((task("a", "a"), task("b", "a"))) == [["a"]]


def test_rung_a_drops_the_lowest_priority_edge_of_each_cycle() -> None:
    # a <-> b, where b is the least important: the edge into b goes.
    tasks = (task("a", "b", priority=1), task("b", "a", priority=5), task("c", "c"))
    outcome = resolve_cycles(tasks, LadderPolicy(max_edges_to_drop=3), never_asked)
    assert deps(outcome.tasks) == {"a": ("b",), "b": (), "c": ()}
    assert [s.rung for s in outcome.steps] == ["A"]
    assert outcome.steps[0].detail == "a -> b, c -> c"
    assert not find_cycles(outcome.tasks)


def test_rung_b_asks_the_provider_when_too_many_cycles() -> None:
    tasks = (task("a", "b"), task("b", "a"), task("c", "d"), task("d", "c"))
    asked: list[list[list[str]]] = []

    def ask(current: tuple[Task, ...], cycles: list[list[str]]) -> tuple[Task, ...]:
        asked.append(cycles)
        return (task("a"), task("b", "a"), task("c"), task("d", "c"))

    outcome = resolve_cycles(tasks, LadderPolicy(max_edges_to_drop=1), ask)
    assert asked == [[["a", "b"], ["c", "d"]]]
    assert [s.rung for s in outcome.steps] == ["A", "B"]
    assert outcome.steps[0].action == "skipped"
    assert deps(outcome.tasks) == {"a": (), "b": ("a",), "c": (), "d": ("c",)}


def still_cyclic(current: tuple[Task, ...], _cycles: list[list[str]]) -> tuple[Task, ...]:
    return current


def test_rung_c_runs_one_by_one_in_priority_order() -> None:
    tasks = (task("a", "b", priority=3), task("b", "a", priority=1), task("c", priority=2))
    outcome = resolve_cycles(tasks, LadderPolicy(max_edges_to_drop=0), still_cyclic)
    assert [s.rung for s in outcome.steps] == ["A", "B", "C"]
    assert outcome.ran_sequentially
    # priority order b (1), c (2), a (3) as a chain
    assert deps(outcome.tasks) == {"b": (), "c": ("b",), "a": ("c",)}


def test_rung_d_blocks_when_approval_is_required() -> None:
    tasks = (task("a", "b"), task("b", "a"))
    policy = LadderPolicy(max_edges_to_drop=0, sequential_fallback=False, require_approval=True)
    with pytest.raises(PlanBlocked) as blocked:
        resolve_cycles(tasks, policy, still_cyclic)
    assert blocked.value.cycles == [["a", "b"]]
    assert [s.rung for s in blocked.value.steps] == ["A", "B", "D"]
    assert "a -> b -> a" in str(blocked.value)


def test_rung_e_is_a_hard_error_naming_the_cycles() -> None:
    tasks = (task("a", "b"), task("b", "a"), task("c", "c"))
    policy = LadderPolicy(max_edges_to_drop=0, sequential_fallback=False)
    with pytest.raises(PlanCyclic, match=r"c -> c, a -> b -> a"):
        resolve_cycles(tasks, policy, None)


class CyclicProvider:
    """Proposes a cycle; its repair answer removes it (rung B through the planner)."""

    name = "cyclic"
    model = "cyclic-1"

    def stream_plan(self, request: object) -> Iterator[Task | PlanDraft]:
        yield PlanDraft("cyclic", (task("a", "b"), task("b", "a")), TokenUsage(input_tokens=5))

    def generate_files(self, *args: object) -> GeneratedFiles:
        raise NotImplementedError

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair:
        return DependencyRepair({"a": (), "b": ("a",)}, TokenUsage(input_tokens=7))


def test_planner_records_rungs_on_the_plan_and_counts_repair_usage() -> None:
    request = parse_build_request(prompt="anything")
    outcome = make_plan(request, "b1", CyclicProvider(), LadderPolicy(max_edges_to_drop=0))
    assert [s.rung for s in outcome.plan.recovery] == ["A", "B"]
    assert deps(outcome.plan.tasks) == {"a": (), "b": ("a",)}
    assert outcome.usage.input_tokens == 12
    assert (outcome.plan.provider, outcome.plan.model) == ("cyclic", "cyclic-1")


def test_planner_refuses_unsafe_target_paths() -> None:
    class EscapingProvider(CyclicProvider):
        def stream_plan(self, request: object) -> Iterator[Task | PlanDraft]:
            bad = task("a").model_copy(
                update={"input": TaskInput(prompt="p", target_path="../../etc/passwd")}
            )
            yield PlanDraft("bad", (bad,), TokenUsage())

    with pytest.raises(PlanInvalid, match=r"task 'a': path '../../etc/passwd' climbs out"):
        make_plan(parse_build_request(prompt="x"), "b1", EscapingProvider(), LadderPolicy())
