"""What every step of a build meets: the settings, the app store, the artifact store, the event
log, the result cache, budgets, the deploy target and the provider; the build's workspace and its
time limit. The steps (planning, tasks, site, accounting) each live in a module of their own."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from anyio import to_thread

from sheen_pipeline.budgets import BudgetBook
from sheen_pipeline.cache import ResultCache, Worker
from sheen_pipeline.config import Settings
from sheen_pipeline.deploy.target import DeployTarget
from sheen_pipeline.deploy.targets import make_target
from sheen_pipeline.events.payloads import BuildStarted
from sheen_pipeline.events.runtime import event_log
from sheen_pipeline.execution.tasks import write_files
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import (
    BuildRequest,
    FileArtifact,
    Task,
    TaskResult,
    TokenUsage,
    check_relative_path,
)
from sheen_pipeline.providers import select_provider
from sheen_pipeline.providers.base import Provider
from sheen_pipeline.store.builds import BuildStatus, BuildStore
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.files import BuildFiles, Stage
from sheen_pipeline.store.ledger import Ledger
from sheen_pipeline.store.requests import RequestStore
from sheen_pipeline.store.versions import VersionStore


class BuildTimeLimit(RuntimeError):
    """The build's current run used up SHEEN_BUILD_TIMEOUT_S."""


class BuildParts:
    """The collaborators of the build service, made once from settings."""

    def __init__(self, settings: Settings, provider: Provider | None = None) -> None:
        """`provider` replaces the one settings choose (tests hand in fakes this way)."""
        self.settings = settings
        self._provider = provider
        self.store = BuildStore(settings.database_url)
        self.requests = RequestStore(settings.database_url)
        self.ledger = Ledger(settings.database_url)
        self.budgets = BudgetBook(self.store.engine, settings.budgets)
        self.events = event_log(settings)
        self.cache = ResultCache(self.store.engine, settings.result_cache_ttl_s)
        self.deployments = DeploymentStore(settings.database_url)
        self.versions = VersionStore(settings.database_url)

    @cached_property
    def files(self) -> BuildFiles:
        """Each build's files in the shared artifact store (SHEEN_ARTIFACT_STORE); made on first
        use, as an S3 client costs an import most processes never need."""
        return BuildFiles.open(self.settings.database_url, self.settings.artifact_store)

    @cached_property
    def target(self) -> DeployTarget:
        """Made on first use: a Cloudflare target needs its credentials only to deploy."""
        return make_target(self.settings)

    @cached_property
    def provider(self) -> Provider:
        return self._provider or select_provider(self.settings)

    @property
    def worker(self) -> Worker:
        return self.provider.name, self.provider.model

    def workspace_dir(self, build_id: str) -> Path:
        return self.settings.workspaces_dir / build_id

    def _local_copy(
        self, build_id: str, stage: Stage, folder: Path, prune: frozenset[str] | None = None
    ) -> Path:
        """The stage's files as a folder of this process's cache, fetched from the artifact
        store: a step may run on any machine, and a local folder may be lost at any time."""
        self.files.materialize(build_id, stage, folder, prune)
        return folder

    def _workspace(self, build_id: str, prune: frozenset[str] | None = None) -> Workspace:
        folder = self._local_copy(build_id, Stage.SOURCE, self.workspace_dir(build_id), prune)
        return Workspace(folder, self.settings.file_limits)

    async def _write(
        self,
        build_id: str,
        task: Task,
        files: Mapping[str, str],
        workspace: Workspace,
        usage: TokenUsage,
        heals: int = 0,
        cache_hit: bool = False,
    ) -> TaskResult:
        """Write a task's files, then keep them in the artifact store, where every later step
        reads them. The local write stays on the event loop, so the workspace limits are checked
        and the files written with no sibling task's write in between; the store's I/O goes to
        a thread, so sibling tasks wait on their model calls meanwhile."""
        result = write_files(task, files, workspace, usage, heals, cache_hit)
        contents = {check_relative_path(p).as_posix(): files[p].encode() for p in files}
        await to_thread.run_sync(self.files.save, build_id, Stage.SOURCE, contents)
        return result

    def _read_text(self, artifact: FileArtifact) -> str:
        return self.files.read(artifact).decode("utf-8")

    def start_run(self, build_id: str, run_id: str) -> None:
        """A run of the build's job starts its first step: say so when it is a re-execution."""
        previous = self.store.start_run(build_id, run_id)
        if previous in (BuildStatus.FAILED, BuildStatus.SUCCEEDED):
            self.events.emit(build_id, BuildStarted(run_id=run_id, reexecution=True))

    def time_left(self, build_id: str) -> float:
        """Seconds the build's current run has left under SHEEN_BUILD_TIMEOUT_S."""
        started = self.store.get_build(build_id).run_started_at
        elapsed = 0.0 if started is None else (datetime.now(UTC) - started).total_seconds()
        return self.settings.build_timeout_s - elapsed

    def check_time_left(self, build_id: str) -> float:
        left = self.time_left(build_id)
        if left <= 0:
            raise BuildTimeLimit(f"the build ran out of its {self.settings.build_timeout_s}s limit")
        return left


def owner_of(request: BuildRequest) -> tuple[str, str]:
    """Whose budgets a build's calls count against: its project's and its user's."""
    return request.project_id, request.user_id
