"""The build service: each step of a build (plan, task, site build, deploy, failure) over the
app store, the event log, the result cache and the provider. Plain Python: Dagster ops call it.

Why it is over 400 lines: every step meets the same store, files, events, budgets and provider
here, and the class is the one object the Dagster layer and the CLI hold. Splitting it into
per-step modules (planning, tasks, site build/deploy/checks, accounting) behind this class as a
facade is the next change to it; until then, new step logic belongs in a module of its own (as
the step policy in steps.py does) rather than here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path, PurePosixPath
from statistics import median as median_of

from anyio import to_thread

from sheen_pipeline.budgets import BudgetBook, BudgetExceeded, Payer, paying
from sheen_pipeline.build.npm import NpmRegistry, build_npm, is_npm_project
from sheen_pipeline.build.sandbox import CommandFailed, Sandbox
from sheen_pipeline.build.static import BuildError, build_static
from sheen_pipeline.cache import ResultCache, Worker
from sheen_pipeline.checks.browser import check_preview
from sheen_pipeline.checks.repair import repair_task
from sheen_pipeline.checks.results import CheckReport
from sheen_pipeline.config import Settings
from sheen_pipeline.costs import CostReport, cost_report
from sheen_pipeline.deploy.target import DeployTarget
from sheen_pipeline.deploy.targets import make_target
from sheen_pipeline.events.payloads import (
    BudgetExceededEvent,
    BuildCompleted,
    BuildFailed,
    BuildStarted,
    BuildStepStarted,
    CheckOutcome,
    CostAnomaly,
    DeployCompleted,
    DeployStarted,
    PlanBlockedEvent,
    PlanGenerated,
    PlanPartial,
    PlanPartialRetracted,
    PlanWarning,
    PreviewChecked,
    RepairCompleted,
    RepairStarted,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskTimedOut,
)
from sheen_pipeline.events.runtime import event_log
from sheen_pipeline.execution.tasks import context_files, generate, write_files
from sheen_pipeline.execution.timeouts import TaskTimeout
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import (
    BUILD_TOOL_FOLDERS,
    BuildRequest,
    Deployed,
    FileArtifact,
    Plan,
    Task,
    TaskResult,
    TaskType,
    TokenUsage,
    check_relative_path,
)
from sheen_pipeline.planning.dag import LadderPolicy, PlanBlocked
from sheen_pipeline.planning.planner import (
    OnRetract,
    OnTask,
    PlanOutcome,
    make_plan,
    receive_draft,
)
from sheen_pipeline.providers import select_provider
from sheen_pipeline.providers.base import BaseVersion, PlanDraft, Provider, ProviderError
from sheen_pipeline.providers.offline.brief import read_brief
from sheen_pipeline.redaction import redact
from sheen_pipeline.store.builds import BuildStatus, BuildStore, UnknownBuild
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.files import BuildFiles, Stage
from sheen_pipeline.store.ledger import Entry, Ledger
from sheen_pipeline.store.requests import RequestStore
from sheen_pipeline.store.versions import VersionStore
from sheen_pipeline.versions.context import load_base, source_digest
from sheen_pipeline.versions.diff import DIFF_PATH, VersionDiff, diff_of_build
from sheen_pipeline.versions.resolve import resolve_base


@dataclass(frozen=True)
class BuildSummary:
    """What the build op hands to the deploy op."""

    files: tuple[FileArtifact, ...]
    usage: TokenUsage
    task_count: int
    heals: int
    cache_hits: int
    builder: str
    command_log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deployment:
    """A build's end: its preview, and either success (with any cost anomaly) or the blocking
    checks that failed it."""

    preview_url: str
    files: tuple[FileArtifact, ...]
    duration_s: float
    deployed: Deployed
    anomaly: CostAnomaly | None = None
    failed: str | None = None


REPAIR_CONTEXT_SUFFIXES = {".html", ".css", ".js", ".json", ".svg", ".txt"}
MAX_IMAGE = 5_000_000  # Anthropic's limit on one image
ANOMALY_WINDOW = 20  # recent builds of the project a build's cost is compared with
ANOMALY_MIN_BUILDS = 3


class BuildTimeLimit(RuntimeError):
    """The build's current run used up SHEEN_BUILD_TIMEOUT_S."""


def is_transient(error: BaseException) -> bool:
    """Worth another attempt later: rate limits, overload, provider timeouts, connection errors."""
    return isinstance(error, ProviderError) and error.retryable


class BuildService:
    """Runs the steps of builds and reports each as a stored build event. Made once per run by
    the Dagster resource (or by the CLI and the API), from settings."""

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

    @classmethod
    def from_env(cls) -> BuildService:
        return cls(Settings.from_env())

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

    @property
    def ladder_policy(self) -> LadderPolicy:
        return LadderPolicy(
            max_edges_to_drop=self.settings.max_cycle_edges_to_drop,
            sequential_fallback=self.settings.sequential_fallback,
            require_approval=self.settings.require_plan_approval,
        )

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
            self.fail(build_id, f"planning failed: {error}")
            raise
        plan = outcome.plan
        cache_hit = saved is not None
        self._spend(build_id, request, plan.planning_usage, hit_saved=saved)
        estimate = self.provider.estimate_build_usd(plan)
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
        over = None if estimate is None else self.budgets.over(*_owner(request), estimate)
        if over is not None:
            self.events.emit(build_id, BudgetExceededEvent(**over.figures()))
            self.fail(build_id, f"planning refused: {over}")
            raise over
        if saved is None:  # only a plan that was stored and is built from is ever reused
            self.cache.put_plan(
                request, self.worker, draft.summary, draft.tasks, draft.usage.cost_usd, digest
            )
        return outcome

    def _start_from_base(
        self, build_id: str, request: BuildRequest
    ) -> tuple[BaseVersion | None, str | None]:
        """A change's source starts as its base's (rows pointing at the same contents); the
        planner is shown the base, and its digest keys the result cache."""
        if request.base_build_id is None:
            return None, None
        carried = self.files.carry_over(request.base_build_id, build_id, Stage.SOURCE)
        base = load_base(request.base_build_id, request.prompt, self.files, self.store)
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
            summary, tasks, original_cost = cached
            return PlanDraft(summary, tasks, TokenUsage()), original_cost
        return receive_draft(self.provider, request, on_task, on_retract, base), None

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

    async def run_task(
        self,
        plan: Plan,
        task_id: str,
        upstream: Sequence[TaskResult],
        attempt: int = 1,
        retries_left: bool = False,
    ) -> TaskResult:
        """Reuse an identical task's stored result, or generate within the task's time limit.
        Async: the tasks of a build wait on their provider calls at the same time."""
        task, build_id = plan.task(task_id), plan.build_id
        self.events.emit(build_id, TaskStarted(task_id=task_id, name=task.name, attempt=attempt))
        task_limit = self.settings.task_timeout_for(task.type.value)
        build_left = self.check_time_left(build_id)
        timeout = min(task_limit, build_left)
        # Fetching from the store goes to a thread: sibling tasks wait on their calls meanwhile.
        workspace = await to_thread.run_sync(self._workspace, build_id)
        saved: Decimal | None = None
        try:
            workspace.check_room_for_more()  # before anything is paid for
            cached = self.cache.get_files(task, upstream, self.worker, plan.base_digest)
            if task.type is TaskType.DELETE_FILE:
                result = await to_thread.run_sync(self._delete, build_id, task, workspace)
            elif cached is not None:
                files, saved = cached
                result = await self._write(
                    build_id, task, files, workspace, TokenUsage(), cache_hit=True
                )
            else:
                context = await to_thread.run_sync(
                    context_files, task, upstream, workspace, self._read_text
                )
                payer = Payer(build_id, *_owner(plan.request), "task", task_id)
                with paying(payer):
                    generated = await generate(task, plan, self.provider, context, timeout)
                result = await self._write(
                    build_id, task, generated.files, workspace, generated.usage, generated.heals
                )
                cost = generated.usage.cost_usd
                self.cache.put_files(
                    task, upstream, self.worker, generated.files, cost, plan.base_digest
                )
        except TaskTimeout as expired:
            self.events.emit(build_id, TaskTimedOut(task_id=task_id, timeout_s=expired.timeout_s))
            if build_left < task_limit:  # it was the build's limit that ran out
                limit = self.settings.build_timeout_s
                raise BuildTimeLimit(f"the build ran out of its {limit}s limit") from None
            raise
        except Exception as error:
            self._pay(build_id, error)
            if isinstance(error, BudgetExceeded):
                self.events.emit(build_id, BudgetExceededEvent(task_id=task_id, **error.figures()))
            self.events.emit(
                build_id,
                TaskFailed(
                    task_id=task_id,
                    error=str(error),
                    attempt=attempt,
                    will_retry=retries_left and is_transient(error),
                ),
            )
            raise
        self._spend(build_id, plan.request, result.usage, task_id, hit_saved=saved)
        self.events.emit(
            build_id,
            TaskCompleted(
                task_id=task_id,
                files=list(result.files),
                usage=result.usage,
                heals=result.heals,
                cache_hit=result.cache_hit,
            ),
        )
        return result

    def _delete(self, build_id: str, task: Task, workspace: Workspace) -> TaskResult:
        """A change removes a file of its base: no model call, nothing to pay."""
        path = check_relative_path(task.input.target_path).as_posix()
        self.files.remove(build_id, Stage.SOURCE, [path])
        workspace.remove(path)
        return TaskResult(task_id=task.id, files=(), usage=TokenUsage())

    def change_diff(self, build_id: str, keep: bool = False) -> VersionDiff | None:
        """The build's source against its base's (None for a build from scratch); with keep,
        the whole diff is stored in the build's `changes` stage too."""
        base_id = self.store.get_build(build_id).request.base_build_id
        if base_id is None:
            return None
        diff = diff_of_build(build_id, base_id, self.files)
        if keep:
            self.files.save(build_id, Stage.CHANGES, {DIFF_PATH: diff.text.encode()})
        return diff

    def build_site(self, plan: Plan, results: Sequence[TaskResult]) -> BuildSummary:
        """npm projects (package.json with a build script) build sandboxed; others copy as is.
        The workspace comes from the artifact store, and the built site goes back to it."""
        build_id = plan.build_id
        workspace = self._workspace(build_id, prune=BUILD_TOOL_FOLDERS).root
        dist = self.settings.dist_dir / build_id
        builder = "npm" if is_npm_project(workspace) else "static"
        limits = self.settings.file_limits
        self.events.emit(build_id, BuildStepStarted(builder=builder))
        command_log: tuple[str, ...] = ()
        if builder == "npm":
            timeout = min(self.settings.build_command_timeout_s, self.check_time_left(build_id))
            try:
                files, outputs = build_npm(
                    workspace,
                    dist,
                    timeout,
                    limits,
                    Sandbox(self.settings.sandbox),
                    NpmRegistry(self.settings.npm_cache_dir, self.settings.npm_registry),
                )
            except CommandFailed as failed:
                tail = redact(failed.output[-2000:], self.settings.secrets)
                raise BuildError(f"{failed}; its last output:\n{tail}") from None
            command_log = tuple(
                f"$ {o.command}\n{redact(o.output, self.settings.secrets)}" for o in outputs
            )
        else:
            files = build_static(workspace, dist, limits)
        self.files.replace(build_id, Stage.DIST, dist)
        return BuildSummary(
            files=tuple(files),
            usage=self.store.get_build(build_id).usage,
            task_count=len(plan.tasks),
            heals=plan.planning_heals + sum(r.heals for r in results),
            cache_hits=sum(r.cache_hit for r in results),
            builder=builder,
            command_log=command_log,
        )

    def deploy_preview(self, plan: Plan) -> Deployed:
        """Publish the build at a preview URL of its own on the configured target; production
        is left as it is (see promotion)."""
        build_id, project_id = plan.build_id, plan.request.project_id
        self.events.emit(build_id, DeployStarted(target=self.settings.deploy.target))
        deployed = self.target.deploy(project_id, build_id, self._dist(build_id))
        self.deployments.record(build_id, project_id, deployed)
        self.events.emit(
            build_id,
            DeployCompleted(
                preview_url=deployed.url, **deployed.model_dump(exclude={"url", "files"})
            ),
        )
        return deployed

    def check_preview(self, plan: Plan) -> CheckReport:
        """Look at the deployed files in a real, sandboxed browser (answered from the artifact
        store, so every target is checked the same way, offline too); screenshots go to
        SHEEN_HOME/screenshots."""
        build_id = plan.build_id
        if not self.settings.preview_checks:
            report = CheckReport.not_run("not run: SHEEN_PREVIEW_CHECKS=off")
        else:
            forms = len(read_brief(plan.request.prompt).forms)
            shots_dir = self.settings.screenshots_dir / build_id
            site = {
                a.path: self.files.read(a) for a in self.files.stage_files(build_id, Stage.DIST)
            }
            report = check_preview(site, forms, shots_dir, Sandbox(self.settings.sandbox))
            self.files.replace(build_id, Stage.SCREENSHOTS, shots_dir)
        outcomes = [
            CheckOutcome(name=r.name, blocking=r.blocking, passed=r.passed, message=r.message)
            for r in report.results
        ]
        shots = {name: self.settings.screenshot_url(build_id, name) for name in report.screenshots}
        self.events.emit(build_id, PreviewChecked(checks=outcomes, screenshots=shots))
        return report

    def _dist(self, build_id: str) -> Path:
        return self._local_copy(
            build_id, Stage.DIST, self.settings.dist_dir / build_id, prune=frozenset()
        )

    async def repair(self, plan: Plan, round_number: int, failures: list[str]) -> TaskResult:
        """One repair round: the failed checks go to the provider as a task on the site's
        files (shown as context), with the check's screenshots for a model that looks at
        images; what it returns is written over them. Priced and recorded like every task."""
        build_id = plan.build_id
        task = repair_task(round_number, failures)
        self.events.emit(build_id, RepairStarted(round=round_number, failures=failures))
        workspace = self._workspace(build_id, prune=BUILD_TOOL_FOLDERS)
        context = {
            artifact.path: self._read_text(artifact)
            for artifact in self.files.stage_files(build_id, Stage.SOURCE)
            if PurePosixPath(artifact.path).suffix in REPAIR_CONTEXT_SUFFIXES
        }
        shots = self.files.stage_files(build_id, Stage.SCREENSHOTS)
        images = [self.files.read(shot) for shot in shots if shot.size < MAX_IMAGE]
        timeout = min(
            self.settings.task_timeout_for(task.type.value), self.check_time_left(build_id)
        )
        try:
            with paying(Payer(build_id, *_owner(plan.request), "task", task.id)):
                generated = await generate(task, plan, self.provider, context, timeout, images)
        except Exception as error:
            self._pay(build_id, error)
            raise
        result = await self._write(
            build_id, task, generated.files, workspace, generated.usage, generated.heals
        )
        self._spend(build_id, plan.request, result.usage, task.id)
        self.events.emit(
            build_id,
            RepairCompleted(round=round_number, files=list(result.files), usage=result.usage),
        )
        return result

    def complete(
        self, plan: Plan, summary: BuildSummary, deployed: Deployed, report: CheckReport
    ) -> Deployment:
        """The build succeeds when no blocking check failed; otherwise it fails naming them."""
        build_id = plan.build_id
        failures = report.blocking_failures
        if failures:
            named = "; ".join(f"{r.name}: {r.message}" for r in failures)
            self.fail(build_id, f"preview checks failed: {named}")
            return Deployment(deployed.url, deployed.files, 0.0, deployed, failed=named)
        url, files = deployed.url, deployed.files
        self.store.set_status(build_id, BuildStatus.SUCCEEDED, preview_url=url, usage=summary.usage)
        started = self.store.get_build(build_id).created_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        duration = (datetime.now(UTC) - started).total_seconds()
        self.events.emit(
            build_id,
            BuildCompleted(
                preview_url=url,
                files=[f.path for f in files],
                usage=summary.usage,
                duration_s=round(duration, 3),
                checks_passed=[r.name for r in report.results if r.passed],
                checks_warned=[r.name for r in report.results if not r.passed],
                screenshots={
                    name: self.settings.screenshot_url(build_id, name)
                    for name in report.screenshots
                },
            ),
        )
        anomaly = self._cost_anomaly(plan, summary.usage.cost_usd)
        if anomaly is not None:
            self.events.emit(build_id, anomaly)
        return Deployment(url, tuple(files), round(duration, 3), deployed, anomaly=anomaly)

    def _cost_anomaly(self, plan: Plan, cost: Decimal | None) -> CostAnomaly | None:
        """A build that cost over SHEEN_COST_ANOMALY_FACTOR times its project's median of
        recent builds (at least ANOMALY_MIN_BUILDS of them, so one cheap build is no median)."""
        recent = self.store.recent_costs(plan.request.project_id, plan.build_id, ANOMALY_WINDOW)
        if cost is None or len(recent) < ANOMALY_MIN_BUILDS:
            return None
        median, factor = median_of(recent), self.settings.cost_anomaly_factor
        if median <= 0 or cost <= median * Decimal(str(factor)):
            return None
        return CostAnomaly(
            cost_usd=cost, median_usd=median, factor=factor, builds_compared=len(recent)
        )

    def _spend(
        self,
        build_id: str,
        request: BuildRequest,
        usage: TokenUsage,
        task_id: str | None = None,
        *,
        hit_saved: Decimal | None = None,
    ) -> None:
        """What a piece of work cost goes on the build's running total. Paid calls are in the
        ledger already (one entry each, made by the provider's meter); a result-cache hit,
        `hit_saved` set, goes in with what the original work cost."""
        self.store.add_usage(build_id, usage)
        if hit_saved is None:
            return
        project_id, user_id = _owner(request)
        self.ledger.record(
            Entry(
                build_id=build_id,
                project_id=project_id,
                user_id=user_id,
                provider=self.provider.name,
                model=self.provider.model,
                kind="plan" if task_id is None else "task",
                outcome="cache_hit",
                usage=usage,
                task_id=task_id,
                saved_usd=hit_saved,
            )
        )

    def _pay(self, build_id: str, error: Exception) -> None:
        """A failed provider call's answers were paid for: they count in the build's cost."""
        if isinstance(error, ProviderError):
            self.store.add_usage(build_id, error.usage)

    def fail(self, build_id: str, reason: str, stalled_before: float | None = None) -> TokenUsage:
        """Mark the build failed and emit build_failed, once per run however many steps fail;
        returns what the build has cost so far (every paid call), which the event carries.
        With stalled_before, only a build still running whose heartbeat stopped before it."""
        reason = redact(reason, self.settings.secrets)
        newly_failed = self.store.mark_failed(build_id, reason, stalled_before)
        spent = self.store.get_build(build_id).usage
        if newly_failed:
            self.events.emit(build_id, BuildFailed(reason=reason, usage=spent))
        return spent

    def cost_report(self, since: datetime, until: datetime) -> CostReport:
        """What every priced piece of work in [since, until) cost, and the builds that ended."""
        return cost_report(self.ledger, self.store, self.settings.prices, since, until)

    def fail_build_or_request(self, build_id: str, request_id: str | None, reason: str) -> None:
        """A run failed for good: fail its build, or its request when it failed before the build
        was recorded (for example at launch). A no-op for a build its steps already failed."""
        try:
            self.fail(build_id, reason)
        except UnknownBuild:
            if request_id is not None:
                self.requests.fail(request_id, reason)


def _owner(request: BuildRequest) -> tuple[str, str]:
    """Whose budgets a build's calls count against: its project's and its user's."""
    return request.project_id, request.user_id
