"""Planning a build: accepting its request (a change's base resolved), recording it, asking the
provider for a plan (of a change, from the base's files), making it acyclic and storing it."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sheen_pipeline.budgets import BudgetExceeded, Payer, paying
from sheen_pipeline.checks.repair import MAX_REPAIR_IMAGES
from sheen_pipeline.events.payloads import (
    BudgetExceededEvent,
    BuildStarted,
    PlanBlockedEvent,
    PlanGenerated,
    PlanPartial,
    PlanPartialRetracted,
    PlanWarning,
)
from sheen_pipeline.models import (
    BuildRequest,
    Plan,
    Task,
    TokenUsage,
)
from sheen_pipeline.planning.dag import LadderPolicy, PlanBlocked
from sheen_pipeline.planning.planner import (
    OnRetract,
    OnTask,
    PlanOutcome,
    make_plan,
    receive_draft,
)
from sheen_pipeline.providers.base import BaseVersion, PlanDraft
from sheen_pipeline.service.accounting import Accounting
from sheen_pipeline.service.estimate import BuildScope, build_calls
from sheen_pipeline.service.parts import owner_of
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.files import Stage
from sheen_pipeline.versions.context import load_base, source_digest
from sheen_pipeline.versions.resolve import resolve_base


class Planning(Accounting):
    """The planning step of BuildService."""

    @property
    def ladder_policy(self) -> LadderPolicy:
        return LadderPolicy(
            max_edges_to_drop=self.settings.max_cycle_edges_to_drop,
            sequential_fallback=self.settings.sequential_fallback,
            require_approval=self.settings.require_plan_approval,
        )

    def accept(self, request: BuildRequest) -> BuildRequest:
        """The request with its base resolved to a succeeded build of its project (BaseRefused
        otherwise): every entry point calls this before anything is spent."""
        return resolve_base(request, self.store, self.versions, self.deployments)

    def plan(
        self, build_id: str, request: BuildRequest, on_task: OnTask = lambda _task: None
    ) -> PlanOutcome:
        """Record the build, make and store its plan; a blocked or failed plan marks it so. A
        change starts from its base's files, carried over by hash."""
        request = self.accept(request)
        self.store.create_build(build_id, request)
        self.events.emit(
            build_id,
            BuildStarted(
                project_id=request.project_id,
                user_id=request.user_id,
                prompt=request.prompt,
                base_build_id=request.base_build_id,
            ),
        )
        base, digest = self._start_from_base(build_id, request)

        def partial(task: Task) -> None:
            self.events.emit(build_id, PlanPartial(task=task))
            on_task(task)

        def retract(task_ids: list[str]) -> None:
            self.events.emit(build_id, PlanPartialRetracted(task_ids=task_ids))

        try:
            with paying(Payer(build_id, request.project_id, request.user_id, "plan")):
                draft, saved = self._draft(request, partial, retract, base, digest)
                outcome = make_plan(
                    request,
                    build_id,
                    self.provider,
                    self.ladder_policy,
                    draft=draft,
                    max_tasks=self.settings.max_tasks,
                    base_tree=None if base is None else base.tree,
                    base_digest=digest,
                )
        except PlanBlocked as blocked:
            self.store.set_status(build_id, BuildStatus.BLOCKED, error=str(blocked))
            self.events.emit(
                build_id, PlanBlockedEvent(cycles=blocked.cycles, recovery=list(blocked.steps))
            )
            raise
        except Exception as error:
            self._pay(build_id, error)
            if isinstance(error, BudgetExceeded):  # every refusal is an event (and a webhook)
                self.events.emit(build_id, BudgetExceededEvent(**error.figures()))
            self.fail(build_id, f"planning failed: {error}")
            raise
        plan = outcome.plan
        cache_hit = saved is not None
        self._spend(build_id, request, plan.planning_usage, hit_saved=saved)
        estimate = self.estimate(plan, base)
        self.store.save_plan(plan)
        for warning in outcome.warnings:
            self.events.emit(build_id, PlanWarning(warning=warning))
        self.events.emit(
            build_id,
            PlanGenerated(
                summary=plan.summary,
                tasks=list(plan.tasks),
                recovery=list(plan.recovery),
                provider=plan.provider,
                model=plan.model,
                usage=plan.planning_usage,
                cache_hit=cache_hit,
                estimated_cost_usd=estimate,
            ),
        )
        try:  # the whole estimate is held before any task call, or the build ends here
            self.budgets.admit(build_id, *owner_of(request), estimate)
        except BudgetExceeded as refused:
            self.events.emit(build_id, BudgetExceededEvent(**refused.figures()))
            self.fail(build_id, f"admission refused: {refused}")
            raise
        if saved is None:  # only a plan that was stored and is built from is ever reused
            self.cache.put_plan(
                request,
                self.worker,
                draft.summary,
                draft.tasks,
                draft.usage.cost_usd,
                digest,
                draft.acceptance,
            )
        return replace(outcome, estimate_usd=estimate)

    def estimate(self, plan: Plan, base: BaseVersion | None) -> Decimal | None:
        """The most the build's calls may cost after planning: every task with its re-asks,
        and every repair round (see service.estimate)."""
        scope = BuildScope(
            base_sizes={} if base is None else base.tree,
            repair_rounds=self.settings.repair_rounds if self.settings.preview_checks else 0,
            repair_images=MAX_REPAIR_IMAGES if self.provider.takes_images else 0,
        )
        calls = build_calls(plan, scope, self.settings.model_calls.max_tokens)
        return self.provider.estimate_calls_usd(calls)

    def _start_from_base(
        self, build_id: str, request: BuildRequest
    ) -> tuple[BaseVersion | None, str | None]:
        """A change's source starts as its base's (rows pointing at the same contents); the
        planner is shown the base, and its digest keys the result cache."""
        if request.base_build_id is None:
            return None, None
        carried = self.files.carry_over(request.base_build_id, build_id, Stage.SOURCE)
        base = load_base(request.base_build_id, carried, request.prompt, self.files, self.store)
        return base, source_digest(carried)

    def _draft(
        self,
        request: BuildRequest,
        on_task: OnTask,
        on_retract: OnRetract,
        base: BaseVersion | None,
        digest: str | None,
    ) -> tuple[PlanDraft, Decimal | None]:
        """An identical request (same prompt, framework, provider and model, and a base with
        the same files) reuses the cached plan at no cost (returning what it saved); otherwise
        the provider streams a draft (returning None), cached by plan() once it became a plan."""
        cached = self.cache.get_plan(request, self.worker, digest)
        if cached is not None:
            summary, tasks, steps, original_cost = cached
            return PlanDraft(summary, tasks, TokenUsage(), acceptance=steps), original_cost
        return receive_draft(self.provider, request, on_task, on_retract, base), None
