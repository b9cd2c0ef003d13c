"""A deterministic provider that needs no network and no key: real sites from the prompt's words."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal

from sheen_pipeline.models import BuildRequest, Plan, Task, TaskType, TokenUsage
from sheen_pipeline.providers.base import (
    BaseVersion,
    CallBound,
    DependencyRepair,
    GeneratedFiles,
    PlanDraft,
    ProviderError,
)
from sheen_pipeline.providers.offline import assets, changes, pages, plans, react
from sheen_pipeline.providers.offline.acceptance import acceptance_steps
from sheen_pipeline.providers.offline.brief import SiteBrief, read_brief

_FREE = TokenUsage()

_RENDERERS: dict[str, Callable[[SiteBrief], str]] = {
    plans.CONFIG_PATH: assets.site_config,
    plans.STYLES_PATH: assets.stylesheet,
    plans.FORMS_PATH: assets.forms_script,
    plans.TODO_PATH: lambda _brief: assets.todo_script(),
    plans.DASHBOARD_PATH: lambda _brief: assets.dashboard_script(),
    plans.INDEX_PATH: pages.index_page,
    plans.POST_PATH: pages.post_page,
}


def _brief_from_config(context_files: Mapping[str, str]) -> SiteBrief | None:
    """The brief the config task wrote, so later tasks build on it rather than re-reading."""
    raw = context_files.get(plans.CONFIG_PATH)
    if raw is None:
        return None
    data = json.loads(raw)
    return SiteBrief(
        name=data["name"],
        kind=data["kind"],
        business=data.get("business"),
        location=data.get("location"),
        features=tuple(data.get("features", ())),
    )


class OfflineProvider:
    name = "offline"
    model = "offline"
    takes_images = False

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        brief = read_brief(request.prompt)
        if request.framework == "react":
            tasks = react.plan_react_tasks(brief, request.prompt)
            summary = f"A React app for {brief.name}"
        else:
            tasks = plans.plan_tasks(brief, request.prompt)
            summary = f"A {brief.kind} site for {brief.name}"
        steps = acceptance_steps(brief, request.framework or "static")
        yield from tasks
        yield PlanDraft(summary=summary, tasks=tasks, usage=_FREE, acceptance=steps)

    def stream_change(self, request: BuildRequest, base: BaseVersion) -> Iterator[Task | PlanDraft]:
        """A follow-up as edits of the base's files (see changes.py)."""
        try:
            tasks = changes.change_tasks(request.prompt, base)
        except changes.CannotChange as error:
            raise ProviderError(str(error)) from None
        yield from tasks
        summary = f"A change of {changes.site_name(base)}: {request.prompt}"
        yield PlanDraft(summary=summary, tasks=tasks, usage=_FREE)

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        return self.render_files(task, plan, context_files)

    def render_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        """The task's files from templates: instant, no network."""
        brief = _brief_from_config(context_files) or read_brief(plan.request.prompt)
        target = task.input.target_path
        if task.input.context.startswith(changes.CHANGE_MARKER):
            return GeneratedFiles(
                {target: changes.apply_change(task, context_files[target])}, _FREE
            )
        if task.type is TaskType.MODIFY_FILE and not target.endswith(".html"):
            return GeneratedFiles({target: context_files[target]}, _FREE)  # nothing it can fix
        if task.type is TaskType.MODIFY_FILE:
            return GeneratedFiles({target: pages.add_metadata(context_files[target], brief)}, _FREE)
        renderers = react.RENDERERS if plan.request.framework == "react" else _RENDERERS
        renderer = renderers.get(target)
        if renderer is None:
            raise ProviderError(f"the offline provider has no template for {target!r}")
        return GeneratedFiles({target: renderer(brief)}, _FREE)

    def estimate_calls_usd(self, calls: Sequence[CallBound]) -> Decimal:
        return Decimal(0)  # templates cost nothing

    def estimate_plan_usd(self, request: BuildRequest) -> Decimal:
        return Decimal(0)

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair:
        """Keep only dependencies on tasks listed earlier: always acyclic."""
        seen: set[str] = set()
        dependencies: dict[str, tuple[str, ...]] = {}
        for task in tasks:
            dependencies[task.id] = tuple(d for d in task.input.dependencies if d in seen)
            seen.add(task.id)
        return DependencyRepair(dependencies, _FREE)
