"""Plan checks on the dependency graph, and the cycle-recovery ladder (rungs A to E)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from sheen_pipeline.models import RecoveryStep, Task, check_tasks

if TYPE_CHECKING:
    import networkx as nx  # pragma: no cover

MAX_CYCLES_REPORTED = 50
AskForAcyclic = Callable[[tuple[Task, ...], list[list[str]]], tuple[Task, ...]]


class PlanCyclic(ValueError):
    """Rung E: the plan has cycles no rung could remove."""

    def __init__(self, cycles: list[list[str]]) -> None:
        self.cycles = cycles
        super().__init__(f"plan has dependency cycles: {format_cycles(cycles)}")


class PlanBlocked(RuntimeError):
    """Rung D: the plan has cycles and waits for a person to approve a fix."""

    def __init__(self, cycles: list[list[str]], steps: tuple[RecoveryStep, ...]) -> None:
        self.cycles = cycles
        self.steps = steps
        super().__init__(f"plan blocked, waiting for approval: cycles {format_cycles(cycles)}")


@dataclass(frozen=True)
class LadderPolicy:
    max_edges_to_drop: int = 3
    sequential_fallback: bool = True
    require_approval: bool = False


@dataclass(frozen=True)
class LadderOutcome:
    tasks: tuple[Task, ...]
    steps: tuple[RecoveryStep, ...]

    @property
    def ran_sequentially(self) -> bool:
        return any(step.rung == "C" for step in self.steps)


def format_cycles(cycles: list[list[str]]) -> str:
    return ", ".join(" -> ".join([*cycle, cycle[0]]) for cycle in cycles)


def dependency_graph(tasks: Sequence[Task]) -> nx.DiGraph:
    """Edges run from a dependency to the task that needs it. networkx is imported here, not by
    the module: most processes (run workers, commands) never build a graph."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(task.id for task in tasks)
    for task in tasks:
        graph.add_edges_from((dep, task.id) for dep in task.input.dependencies)
    return graph


def find_cycles(tasks: Sequence[Task]) -> list[list[str]]:
    """Every elementary cycle (a self-dependency is a cycle of one), in a stable order."""
    import networkx as nx

    cycles = islice(nx.simple_cycles(dependency_graph(tasks)), MAX_CYCLES_REPORTED)
    return sorted((_rotate_to_smallest(cycle) for cycle in cycles), key=lambda c: (len(c), c))


def _rotate_to_smallest(cycle: list[str]) -> list[str]:
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


def with_dependencies(task: Task, dependencies: Sequence[str]) -> Task:
    new_input = task.input.model_copy(update={"dependencies": tuple(dependencies)})
    return task.model_copy(update={"input": new_input})


def _drop_lowest_priority_edges(
    tasks: tuple[Task, ...], cycles: list[list[str]]
) -> tuple[tuple[Task, ...], list[tuple[str, str]]]:
    """Rung A: in each cycle, drop the edge whose dependent task matters least."""
    by_id = {task.id: task for task in tasks}
    dropped: set[tuple[str, str]] = set()
    for cycle in cycles:
        edges = [(cycle[i], cycle[(i + 1) % len(cycle)]) for i in range(len(cycle))]
        if any(edge in dropped for edge in edges):
            continue
        dropped.add(
            max(edges, key=lambda e: (by_id[e[1]].priority, by_id[e[0]].priority, e[1], e[0]))
        )
    repaired = tuple(
        with_dependencies(t, [d for d in t.input.dependencies if (d, t.id) not in dropped])
        for t in tasks
    )
    return repaired, sorted(dropped)


def _run_one_by_one(tasks: tuple[Task, ...]) -> tuple[Task, ...]:
    """Rung C: a chain in priority order, so nothing runs before what it may need."""
    order = sorted(range(len(tasks)), key=lambda i: (tasks[i].priority, i))
    chained: dict[str, Task] = {}
    previous: list[str] = []
    for index in order:
        task = tasks[index]
        chained[task.id] = with_dependencies(task, previous)
        previous = [task.id]
    return tuple(chained[task.id] for task in tasks)


def resolve_cycles(
    tasks: tuple[Task, ...], policy: LadderPolicy, ask_for_acyclic: AskForAcyclic | None
) -> LadderOutcome:
    """Walk the ladder until the plan is acyclic; raise PlanBlocked (D) or PlanCyclic (E)."""
    cycles = find_cycles(tasks)
    if not cycles:
        return LadderOutcome(tasks, ())
    steps: list[RecoveryStep] = []
    original_cycles = cycles

    if len(cycles) <= policy.max_edges_to_drop:
        repaired, dropped = _drop_lowest_priority_edges(tasks, cycles)
        edges = ", ".join(f"{dep} -> {task}" for dep, task in dropped)
        if not find_cycles(repaired):
            steps.append(RecoveryStep(rung="A", action="dropped edges", detail=edges))
            return LadderOutcome(repaired, tuple(steps))
        steps.append(RecoveryStep(rung="A", action="dropping edges failed", detail=edges))
    else:
        steps.append(
            RecoveryStep(
                rung="A",
                action="skipped",
                detail=f"{len(cycles)} cycles exceed the limit of {policy.max_edges_to_drop}",
            )
        )

    if ask_for_acyclic is not None:
        answer = ask_for_acyclic(tasks, cycles)
        check_tasks(answer)
        remaining = find_cycles(answer)
        if not remaining:
            steps.append(
                RecoveryStep(
                    rung="B", action="provider removed cycles", detail=format_cycles(cycles)
                )
            )
            return LadderOutcome(answer, tuple(steps))
        steps.append(
            RecoveryStep(
                rung="B", action="provider answer still cyclic", detail=format_cycles(remaining)
            )
        )

    if policy.sequential_fallback:
        steps.append(
            RecoveryStep(
                rung="C",
                action="running tasks one by one in priority order",
                detail=format_cycles(original_cycles),
            )
        )
        return LadderOutcome(_run_one_by_one(tasks), tuple(steps))

    if policy.require_approval:
        steps.append(
            RecoveryStep(rung="D", action="blocked", detail=format_cycles(original_cycles))
        )
        raise PlanBlocked(original_cycles, tuple(steps))
    raise PlanCyclic(original_cycles)
