"""The site of a build: building it (static copy or sandboxed npm), deploying its preview,
checking it in a browser, a repair round, the diff of a change, and the build's end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sheen_pipeline.budgets import Payer, paying
from sheen_pipeline.build.npm import NpmRegistry, build_npm, is_npm_project
from sheen_pipeline.build.sandbox import CommandFailed, Sandbox
from sheen_pipeline.build.static import BuildError, build_static
from sheen_pipeline.checks.browser import check_preview, run_steps
from sheen_pipeline.checks.repair import MAX_REPAIR_IMAGES, repair_task
from sheen_pipeline.checks.results import CheckReport, CheckResult
from sheen_pipeline.events.payloads import (
    BuildCompleted,
    BuildStepStarted,
    CheckOutcome,
    CostAnomaly,
    DeployCompleted,
    DeployStarted,
    PreviewChecked,
    RepairCompleted,
    RepairStarted,
)
from sheen_pipeline.events.types import EventType
from sheen_pipeline.execution.tasks import generate
from sheen_pipeline.models import (
    BUILD_TOOL_FOLDERS,
    AcceptanceStep,
    Deployed,
    FileArtifact,
    Plan,
    TaskResult,
    TokenUsage,
)
from sheen_pipeline.providers.base import ProviderError
from sheen_pipeline.providers.offline.brief import read_brief
from sheen_pipeline.redaction import redact
from sheen_pipeline.service.accounting import Accounting
from sheen_pipeline.service.parts import owner_of
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.files import Stage
from sheen_pipeline.versions.diff import DIFF_PATH, VersionDiff, diff_of_build


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
    usage: TokenUsage  # what the whole build cost (the ledger's sum when metered)
    anomaly: CostAnomaly | None = None
    failed: str | None = None


# What a repair is shown of the sources: pages, styles, scripts and components (a React app's
# src/ included), data; not lockfiles' kind of bulk or binary files.
REPAIR_CONTEXT_SUFFIXES = {
    *(".html", ".css", ".js", ".mjs", ".jsx", ".ts", ".tsx", ".vue", ".json", ".svg", ".txt"),
}
MAX_IMAGE = 5_000_000  # Anthropic's limit on one image


def repair_failed(error: Exception, failures: list[str]) -> Exception:
    """The repair's error, saying which checks it was repairing (a provider error keeps whether
    it is worth another attempt)."""
    checks = ", ".join(dict.fromkeys(line.split(":", 1)[0] for line in failures))
    message = f"while repairing {checks}: {error}"
    if isinstance(error, ProviderError):
        return ProviderError(
            message, retryable=error.retryable, usage=error.usage, retry_after=error.retry_after
        )
    return RuntimeError(message)


class Site(Accounting):
    """The site steps of BuildService: build, deploy, checks, repair, the end."""

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
        source_maps: dict[str, bytes] = {}
        if builder == "npm":
            timeout = min(self.settings.build_command_timeout_s, self.check_time_left(build_id))
            try:
                files, outputs, source_maps = build_npm(
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
        self.files.replace_with(build_id, Stage.SOURCE_MAPS, source_maps)
        if self.settings.deploy.source_maps:
            self.files.save(build_id, Stage.DIST, source_maps)
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

    def use_preview(self, build_id: str, steps: Sequence[AcceptanceStep]) -> CheckResult:
        """Steps the model never saw (an evaluation's), taken on the build's deployed files in
        the same confined browser as the checks; the failing step's screenshot is kept with the
        build's (`eval/acceptance-failed.png`)."""
        site = self._stage_contents(build_id, Stage.DIST)
        shots = self.settings.screenshots_dir / build_id / "eval"
        return run_steps(site, steps, shots, Sandbox(self.settings.sandbox))

    def check_preview(self, plan: Plan, round_number: int = 0) -> CheckReport:
        """Look at the deployed files in a real, sandboxed browser (answered from the artifact
        store, so every target is checked the same way, offline too). Each round keeps its
        screenshots (`<round>/desktop.png`); the latest round's are also at `desktop.png`."""
        build_id = plan.build_id
        if not self.settings.preview_checks:
            report = CheckReport.not_run("SHEEN_PREVIEW_CHECKS=off")
        else:
            forms = len(read_brief(plan.request.prompt).forms)
            shots_dir = self.settings.screenshots_dir / build_id / str(round_number)
            site, maps = (
                self._stage_contents(build_id, s) for s in (Stage.DIST, Stage.SOURCE_MAPS)
            )
            sandbox = Sandbox(self.settings.sandbox)
            settle_ms = self.settings.check_settle_ms
            report = check_preview(
                site, forms, shots_dir, sandbox, settle_ms, plan.acceptance, maps
            )
            self._keep_screenshots(build_id, round_number, report)
        outcomes = [
            CheckOutcome(name=r.name, blocking=r.blocking, passed=r.passed, message=r.message)
            for r in report.results
        ]
        shots = {
            name: self.settings.screenshot_url(build_id, name, round_number)
            for name in report.screenshots
        }
        self.events.emit(
            build_id, PreviewChecked(checks=outcomes, screenshots=shots, round=round_number)
        )
        return report

    def repaired(self, build_id: str, round_number: int, report: CheckReport) -> list[str]:
        """The blocking checks the repair before this round fixed: failed in the round before,
        pass now (none for round 0)."""
        if round_number == 0:
            return []
        before = [
            e
            for e in self.events.after(build_id)
            if e.type is EventType.PREVIEW_CHECKED and e.data.get("round") == round_number - 1
        ]
        if not before:
            return []
        failed = {
            c["name"] for c in before[-1].data["checks"] if c["blocking"] and c["passed"] is False
        }
        return sorted(r.name for r in report.results if r.name in failed and r.passed)

    def _keep_screenshots(self, build_id: str, round_number: int, report: CheckReport) -> None:
        """The round's screenshots, under its number and as the latest; earlier rounds' stay."""
        shots = {name: path.read_bytes() for name, path in report.screenshots.items()}
        stale = [
            a.path
            for a in self.files.stage_files(build_id, Stage.SCREENSHOTS)
            if "/" not in a.path and a.path.removesuffix(".png") not in shots
        ]
        self.files.remove(build_id, Stage.SCREENSHOTS, stale)  # an earlier round's failed step
        self.files.save(
            build_id,
            Stage.SCREENSHOTS,
            {
                **{f"{round_number}/{name}.png": data for name, data in shots.items()},
                **{f"{name}.png": data for name, data in shots.items()},
            },
        )

    def _stage_contents(self, build_id: str, stage: Stage) -> dict[str, bytes]:
        return {a.path: self.files.read(a) for a in self.files.stage_files(build_id, stage)}

    def _dist(self, build_id: str) -> Path:
        return self._local_copy(
            build_id, Stage.DIST, self.settings.dist_dir / build_id, prune=frozenset()
        )

    async def repair(self, plan: Plan, round_number: int, failures: list[str]) -> TaskResult:
        """One repair round: the failed checks go to the provider as a task on the site's
        files (shown as context), with the check's screenshots for a model that looks at
        images; what it returns is written over them. Priced and recorded like every task."""
        build_id = plan.build_id
        sources = [
            artifact
            for artifact in self.files.stage_files(build_id, Stage.SOURCE)
            if PurePosixPath(artifact.path).suffix in REPAIR_CONTEXT_SUFFIXES
        ]
        task = repair_task(round_number, failures, [a.path for a in sources])
        self.events.emit(build_id, RepairStarted(round=round_number, failures=failures))
        workspace = self._workspace(build_id, prune=BUILD_TOOL_FOLDERS)
        context = {artifact.path: self._read_text(artifact) for artifact in sources}
        shots = self.files.stage_files(build_id, Stage.SCREENSHOTS)  # the latest round's
        shown = [s for s in shots if "/" not in s.path and s.size < MAX_IMAGE][:MAX_REPAIR_IMAGES]
        images = [self.files.read(s) for s in shown]
        timeout = min(
            self.settings.task_timeout_for(task.type.value), self.check_time_left(build_id)
        )
        try:
            with paying(Payer(build_id, *owner_of(plan.request), "task", task.id)):
                try:
                    generated = await generate(task, plan, self.provider, context, timeout, images)
                except ProviderError as refused:
                    if not images or refused.retryable:
                        raise
                    self._pay(build_id, refused)  # the API refused the images: ask without
                    generated = await generate(task, plan, self.provider, context, timeout)
        except Exception as error:
            self._pay(build_id, error)
            raise repair_failed(error, failures) from error
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
            spent = self.fail(build_id, f"preview checks failed: {named}")
            return Deployment(deployed.url, deployed.files, 0.0, deployed, spent, failed=named)
        url, files = deployed.url, deployed.files
        self.store.set_status(build_id, BuildStatus.SUCCEEDED, preview_url=url, usage=summary.usage)
        record = self.store.get_build(build_id)
        usage = record.usage  # the ledger's sum, when metered
        self.budgets.release(build_id)
        duration = (datetime.now(UTC) - record.created_at).total_seconds()
        self.events.emit(
            build_id,
            BuildCompleted(
                preview_url=url,
                files=[f.path for f in files],
                usage=usage,
                duration_s=round(duration, 3),
                checks_passed=[r.name for r in report.results if r.passed],
                checks_warned=[r.name for r in report.results if not r.passed],
                screenshots={
                    name: self.settings.screenshot_url(build_id, name)
                    for name in report.screenshots
                },
            ),
        )
        anomaly = self._cost_anomaly(build_id, usage.cost_usd)
        if anomaly is not None:
            self.events.emit(build_id, anomaly)
        return Deployment(url, tuple(files), round(duration, 3), deployed, usage, anomaly=anomaly)
