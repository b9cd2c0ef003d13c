"""The build flow as plain functions over settings, store and provider; Dagster ops call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from sheen_pipeline.build.static import build_static
from sheen_pipeline.config import Settings
from sheen_pipeline.deploy.local import deploy_local
from sheen_pipeline.execution.tasks import run_task
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import BuildRequest, FileArtifact, Plan, TaskResult, TokenUsage
from sheen_pipeline.planning.dag import LadderPolicy, PlanBlocked
from sheen_pipeline.planning.planner import OnTask, PlanOutcome, make_plan
from sheen_pipeline.providers import select_provider
from sheen_pipeline.providers.base import Provider
from sheen_pipeline.store.builds import BuildStatus, BuildStore


@dataclass(frozen=True)
class BuildSummary:
    """What the build op hands to the deploy op."""

    files: tuple[FileArtifact, ...]
    usage: TokenUsage
    task_count: int
    heals: int


@dataclass(frozen=True)
class Deployment:
    preview_url: str
    files: tuple[FileArtifact, ...]
    duration_s: float


def total_usage(plan: Plan, results: Sequence[TaskResult]) -> TokenUsage:
    """Planning plus every task: the exact total of the calls made for this build."""
    return sum((r.usage for r in results), plan.planning_usage)


class BuildPipeline:
    """One object per process: settings, the app store and the provider."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = BuildStore(settings.database_url)

    @classmethod
    def from_env(cls) -> BuildPipeline:
        return cls(Settings.from_env())

    @cached_property
    def provider(self) -> Provider:
        return select_provider(self.settings)

    @property
    def ladder_policy(self) -> LadderPolicy:
        return LadderPolicy(
            max_edges_to_drop=self.settings.max_cycle_edges_to_drop,
            sequential_fallback=self.settings.sequential_fallback,
            require_approval=self.settings.require_plan_approval,
        )

    def workspace_dir(self, build_id: str) -> Path:
        return self.settings.workspaces_dir / build_id

    def plan(self, build_id: str, request: BuildRequest, on_task: OnTask) -> PlanOutcome:
        """Record the build, make and store its plan; a blocked or failed plan marks it so."""
        self.store.create_build(build_id, request)
        try:
            outcome = make_plan(request, build_id, self.provider, self.ladder_policy, on_task)
        except PlanBlocked as blocked:
            self.store.set_status(build_id, BuildStatus.BLOCKED, error=str(blocked))
            raise
        except Exception as error:
            self.store.set_status(build_id, BuildStatus.FAILED, error=f"planning failed: {error}")
            raise
        self.store.save_plan(outcome.plan)
        return outcome

    def run_task(self, plan: Plan, task_id: str, upstream: Sequence[TaskResult]) -> TaskResult:
        workspace = Workspace(self.workspace_dir(plan.build_id), self.settings.max_file_bytes)
        return run_task(plan.task(task_id), plan, self.provider, workspace, upstream)

    def build_site(self, plan: Plan, results: Sequence[TaskResult]) -> BuildSummary:
        files = build_static(
            self.workspace_dir(plan.build_id), self.settings.dist_dir / plan.build_id
        )
        heals = plan.planning_heals + sum(r.heals for r in results)
        return BuildSummary(tuple(files), total_usage(plan, results), len(plan.tasks), heals)

    def deploy_preview(self, plan: Plan, summary: BuildSummary) -> Deployment:
        build_id = plan.build_id
        files = deploy_local(
            self.settings.dist_dir / build_id, self.settings.previews_dir, build_id
        )
        url = self.settings.preview_url(build_id)
        self.store.set_status(build_id, BuildStatus.SUCCEEDED, preview_url=url, usage=summary.usage)
        started = self.store.get_build(build_id).created_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        duration = (datetime.now(UTC) - started).total_seconds()
        return Deployment(url, tuple(files), round(duration, 3))

    def mark(self, build_id: str, status: BuildStatus, error: str | None = None) -> None:
        self.store.set_status(build_id, status, error=error)
