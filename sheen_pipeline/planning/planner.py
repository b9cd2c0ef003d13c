"""Make a plan: ask the provider, check the tasks, and make the graph acyclic."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from sheen_pipeline.models import (
    BuildRequest,
    Plan,
    PlanInvalid,
    Task,
    TaskType,
    TokenUsage,
    check_relative_path,
    check_tasks,
)
from sheen_pipeline.planning.dag import LadderPolicy, resolve_cycles, with_dependencies
from sheen_pipeline.providers.base import BaseVersion, PlanDraft, Provider

EDITING_TYPES = frozenset({TaskType.MODIFY_FILE, TaskType.DELETE_FILE})


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan
    estimate_usd: Decimal | None = None  # the most its calls may cost, held at admission

    @property
    def usage(self) -> TokenUsage:
        return self.plan.planning_usage

    @property
    def warnings(self) -> list[str]:
        """What a person should hear about: a plan that had to fall back to one-by-one."""
        return [f"{s.action}: {s.detail}" for s in self.plan.recovery if s.rung == "C"]


OnTask = Callable[[Task], None]
OnRetract = Callable[[list[str]], None]


def receive_draft(
    provider: Provider,
    request: BuildRequest,
    on_task: OnTask,
    on_retract: OnRetract = lambda _ids: None,
    base: BaseVersion | None = None,
) -> PlanDraft:
    """Report each task as it streams in; the draft comes last. Tasks reported from an answer
    that was then replaced (healed by a re-ask) and are not in the draft are retracted. With a
    base, the provider plans a change of it."""
    shown: list[Task] = []
    stream = (
        provider.stream_plan(request) if base is None else provider.stream_change(request, base)
    )
    for item in stream:
        if isinstance(item, PlanDraft):
            retracted = [task.id for task in shown if task not in item.tasks]
            if retracted:
                on_retract(retracted)
            return item
        shown.append(item)
        on_task(item)
    raise RuntimeError(f"provider {provider.name} ended the plan stream without a plan")


def make_plan(
    request: BuildRequest,
    build_id: str,
    provider: Provider,
    policy: LadderPolicy,
    on_task: OnTask = lambda _task: None,
    draft: PlanDraft | None = None,
    max_tasks: int | None = None,
    base_tree: Mapping[str, int] | None = None,
    base_digest: str | None = None,
) -> PlanOutcome:
    """Check and repair the provider's draft (streamed now, unless one is given) into a plan;
    one with over max_tasks tasks is refused before any task is paid for."""
    draft = draft or receive_draft(provider, request, on_task)
    usage = draft.usage
    if max_tasks is not None and len(draft.tasks) > max_tasks:
        raise PlanInvalid(
            f"the plan has {len(draft.tasks)} tasks, over the limit of {max_tasks} "
            "(SHEEN_MAX_TASKS); no task was run"
        )
    check_tasks(draft.tasks)
    _check_target_paths(draft.tasks)
    if base_tree is not None:
        check_edited_files(draft.tasks, base_tree)

    def ask_for_acyclic(tasks: tuple[Task, ...], cycles: list[list[str]]) -> tuple[Task, ...]:
        nonlocal usage
        repair = provider.repair_dependencies(tasks, cycles)
        usage = usage + repair.usage
        return tuple(
            with_dependencies(t, repair.dependencies.get(t.id, t.input.dependencies)) for t in tasks
        )

    outcome = resolve_cycles(draft.tasks, policy, ask_for_acyclic)
    plan = Plan(
        build_id=build_id,
        request=request,
        summary=draft.summary,
        tasks=outcome.tasks,
        recovery=outcome.steps,
        provider=provider.name,
        model=provider.model,
        planning_usage=usage,
        planning_heals=draft.heals,
        base_digest=base_digest,
        acceptance=draft.acceptance,
    )
    return PlanOutcome(plan=plan)


def check_edited_files(tasks: tuple[Task, ...], base_tree: Mapping[str, int]) -> None:
    """In a change, a task may modify or delete only a file that exists: one of the base's,
    or one another task of the plan writes (and that task must come first, as a dependency)."""
    writers = {t.input.target_path: t.id for t in tasks if t.type not in EDITING_TYPES}
    problems = []
    for task in tasks:
        target = task.input.target_path
        if task.type not in EDITING_TYPES or target in base_tree:
            continue
        writer = writers.get(target)
        if writer is None:
            verb = "modifies" if task.type is TaskType.MODIFY_FILE else "deletes"
            problems.append(f"task {task.id!r} {verb} {target!r}, which does not exist")
        elif writer not in task.input.dependencies:
            problems.append(f"task {task.id!r} must depend on {writer!r}, which writes {target!r}")
    if problems:
        raise PlanInvalid("; ".join(problems))


def _check_target_paths(tasks: tuple[Task, ...]) -> None:
    problems = []
    for task in tasks:
        try:
            check_relative_path(task.input.target_path)
        except ValueError as error:
            problems.append(f"task {task.id!r}: {error}")
    if problems:
        raise PlanInvalid("; ".join(problems))
