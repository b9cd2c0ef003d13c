"""Make a plan: ask the provider, check the tasks, and make the graph acyclic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sheen_pipeline.models import (
    BuildRequest,
    Plan,
    PlanInvalid,
    Task,
    TokenUsage,
    check_relative_path,
    check_tasks,
)
from sheen_pipeline.planning.dag import LadderPolicy, resolve_cycles, with_dependencies
from sheen_pipeline.providers.base import PlanDraft, Provider


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan

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
) -> PlanDraft:
    """Report each task as it streams in; the draft comes last. Tasks reported from an answer
    that was then replaced (healed by a re-ask) and are not in the draft are retracted."""
    shown: list[Task] = []
    for item in provider.stream_plan(request):
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
    )
    return PlanOutcome(plan=plan)


def _check_target_paths(tasks: tuple[Task, ...]) -> None:
    problems = []
    for task in tasks:
        try:
            check_relative_path(task.input.target_path)
        except ValueError as error:
            problems.append(f"task {task.id!r}: {error}")
    if problems:
        raise PlanInvalid("; ".join(problems))
