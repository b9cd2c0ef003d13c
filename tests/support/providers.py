"""Test providers, loaded through SHEEN_TEST_PROVIDER=tests.support.providers:<name>."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import anyio

from sheen_pipeline.models import BuildRequest, Plan, Task, TaskInput, TaskType, TokenUsage
from sheen_pipeline.planning.dag import with_dependencies
from sheen_pipeline.providers.base import DependencyRepair, GeneratedFiles, PlanDraft, ProviderError
from sheen_pipeline.providers.offline import OfflineProvider


def count_call(plan: Plan, task: Task) -> None:
    """Record a task's call on disk, so it is counted across processes (run workers)."""
    calls = Path(os.environ["SHEEN_HOME"]) / "calls" / plan.build_id
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"{task.id}.{len(list(calls.glob(task.id + '.*')))}").touch()


class FlakyOfflineProvider(OfflineProvider):
    """Fails the task named by SHEEN_TEST_FAIL_TASK once per build, then behaves.

    The marker lives on disk so the failure is remembered across processes (run workers)."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        count_call(plan, task)
        marker = Path(os.environ["SHEEN_HOME"]) / f"failed-{plan.build_id}-{task.id}"
        if task.id == os.environ.get("SHEEN_TEST_FAIL_TASK") and not marker.exists():
            marker.touch()
            raise ProviderError(f"injected failure in task {task.id}")
        return await super().generate_files(task, plan, context_files)


def calls_by_task(home: Path, build_id: str) -> dict[str, int]:
    """How many times each task asked the provider for files."""
    counts: dict[str, int] = {}
    folder = home / "calls" / build_id
    for path in folder.iterdir() if folder.exists() else ():
        task_id = path.name.rsplit(".", 1)[0]
        counts[task_id] = counts.get(task_id, 0) + 1
    return counts


class ChainOfflineProvider(OfflineProvider):
    """Plans SHEEN_TEST_TASKS tasks (500 by default), each after the one before, each writing
    one file of SHEEN_TEST_FILE_BYTES under SHEEN_TEST_FOLDER: a hostile plan's shape."""

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        count = int(os.environ.get("SHEEN_TEST_TASKS", "500"))
        folder = os.environ.get("SHEEN_TEST_FOLDER", "pages")
        tasks = tuple(
            Task(
                id=f"t{n}",
                type=TaskType.CREATE_FILE,
                name=f"page {n}",
                description="one page",
                input=TaskInput(
                    prompt="a page",
                    target_path="index.html" if n == 0 else f"{folder}/p{n}.html",
                    dependencies=(f"t{n - 1}",) if n else (),
                ),
            )
            for n in range(count)
        )
        yield PlanDraft("a chain of pages", tasks, TokenUsage())

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        count_call(plan, task)
        size = int(os.environ.get("SHEEN_TEST_FILE_BYTES", "100"))
        return GeneratedFiles({task.input.target_path: "x" * size}, TokenUsage())


class CyclicOfflineProvider(OfflineProvider):
    """Plans the offline tasks with a cycle added, and cannot repair it."""

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        *_, draft = super().stream_plan(request)
        assert isinstance(draft, PlanDraft)
        first = draft.tasks[0]
        looped = with_dependencies(first, (*first.input.dependencies, draft.tasks[-1].id))
        yield PlanDraft(draft.summary, (looped, *draft.tasks[1:]), draft.usage)

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair:
        return DependencyRepair({t.id: t.input.dependencies for t in tasks}, TokenUsage())


class GatedOfflineProvider(OfflineProvider):
    """Holds the task named by SHEEN_TEST_GATE_TASK until the file SHEEN_HOME/gate-open exists,
    so a test can watch a build while it is running."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        if task.id == os.environ.get("SHEEN_TEST_GATE_TASK"):
            gate = Path(os.environ["SHEEN_HOME"]) / "gate-open"
            with anyio.fail_after(120):
                while not gate.exists():
                    await anyio.sleep(0.05)
        return await super().generate_files(task, plan, context_files)


class ProbeOfflineProvider(OfflineProvider):
    """Takes SHEEN_TEST_TASK_SLEEP_S per task and records when each call ran, across processes,
    so a test can count how many task calls were ever in flight at once."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        probe = Path(os.environ["SHEEN_HOME"]) / "probe"
        probe.mkdir(parents=True, exist_ok=True)
        started = time.time()
        await anyio.sleep(float(os.environ.get("SHEEN_TEST_TASK_SLEEP_S", "0")))
        result = await super().generate_files(task, plan, context_files)
        record = {"build": plan.build_id, "task": task.id, "start": started, "end": time.time()}
        (probe / f"{plan.build_id}-{task.id}.json").write_text(json.dumps(record))
        return result


def max_in_flight(home: Path) -> int:
    """The largest number of recorded calls whose intervals overlap."""
    calls = [json.loads(p.read_text()) for p in (home / "probe").glob("*.json")]
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    in_flight = peak = 0
    for _, change in edges:
        in_flight += change
        peak = max(peak, in_flight)
    return peak


class HangingOfflineProvider(OfflineProvider):
    """Never answers for the task named by SHEEN_TEST_HANG_TASK (a provider call that hangs);
    when the call is cancelled it leaves the file SHEEN_HOME/cancelled-<task id>."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        if task.id == os.environ.get("SHEEN_TEST_HANG_TASK"):
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                (Path(os.environ["SHEEN_HOME"]) / f"cancelled-{task.id}").touch()
                raise
        return await super().generate_files(task, plan, context_files)


class _BreakingOfflineProvider(OfflineProvider):
    """The offline files, with one edit (old -> new) in the file at PATH: a fault to find."""

    PATH: ClassVar[str]
    OLD: ClassVar[str]
    NEW: ClassVar[str]

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        generated = await super().generate_files(task, plan, context_files)
        files = dict(generated.files)
        if self.PATH in files:
            files[self.PATH] = files[self.PATH].replace(self.OLD, self.NEW)
        return GeneratedFiles(files, generated.usage)


class ScriptErrorOfflineProvider(_BreakingOfflineProvider):
    """The offline site, with a script on its page that throws."""

    PATH, OLD, NEW = "index.html", "</body>", "<script>notDefinedAnywhere();</script></body>"


class ReactRuntimeErrorProvider(_BreakingOfflineProvider):
    """The offline React app, with a component that throws when it renders: it builds, and only
    a browser sees it fail."""

    PATH, OLD = "src/App.jsx", "function Hero() {"
    NEW = "function Hero() {\n  window.notAFunction();"


class ReactNullProvider(_BreakingOfflineProvider):
    """The offline React app, whose App component renders nothing: it builds and throws
    nothing, and the page is blank."""

    PATH, OLD = "src/App.jsx", "export default function App() {"
    NEW = "export default function App() {\n  if (SITE) return null;"


class LeakyOfflineProvider(OfflineProvider):
    """Fails every task with an error that quotes secrets and an email address."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        key = os.environ.get("ANTHROPIC_API_KEY", "")
        secret = os.environ.get("SHEEN_WEBHOOK_SECRET", "")
        raise ProviderError(f"upstream said: bad key {key}, secret {secret}, ops@example.com")


NPM_BUILD_SCRIPT = (
    "node -e \"console.log('ENV ' + JSON.stringify(process.env))\" && "
    "node -e \"require('fs').mkdirSync('dist',{recursive:true});"
    "require('fs').copyFileSync('src/index.html','dist/index.html')\""
)


class NpmProjectProvider(OfflineProvider):
    """Plans an npm project: a package.json whose build script prints its environment and
    copies src/index.html to dist/ (SHEEN_TEST_NPM_BUILD replaces the script)."""

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        def task(task_id: str, path: str, deps: tuple[str, ...] = ()) -> Task:
            return Task(
                id=task_id,
                type=TaskType.SETUP_CONFIG if path == "package.json" else TaskType.CREATE_FILE,
                name=path,
                description=f"write {path}",
                input=TaskInput(prompt=request.prompt, target_path=path, dependencies=deps),
            )

        tasks = (task("package", "package.json"), task("page", "src/index.html", ("package",)))
        yield from tasks
        yield PlanDraft("an npm project", tasks, TokenUsage())

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        if task.input.target_path == "package.json":
            script = os.environ.get("SHEEN_TEST_NPM_BUILD", NPM_BUILD_SCRIPT)
            package = {"name": "site", "private": True, "scripts": {"build": script}}
            return GeneratedFiles({"package.json": json.dumps(package)}, TokenUsage())
        return GeneratedFiles(
            {"src/index.html": "<!DOCTYPE html><title>npm site</title>"}, TokenUsage()
        )


class AwkwardIdsOfflineProvider(OfflineProvider):
    """The offline plan with task ids Dagster names cannot carry as they are (dashes), and a
    Python keyword."""

    RENAMES: ClassVar[dict[str, str]] = {
        "config": "site-config",
        "styles": "class",
        "index_page": "index-page",
    }

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        *_, draft = super().stream_plan(request)
        assert isinstance(draft, PlanDraft)

        def rename(task: Task) -> Task:
            deps = [self.RENAMES.get(dep, dep) for dep in task.input.dependencies]
            renamed = task.model_copy(update={"id": self.RENAMES.get(task.id, task.id)})
            return with_dependencies(renamed, deps)

        yield PlanDraft(draft.summary, tuple(rename(t) for t in draft.tasks), draft.usage)


def shaped_tasks(shape: str, prompt: str) -> tuple[Task, ...]:
    """`levels:LxW`: L levels of W tasks, each needing the whole level before it;
    `chain:N`: N tasks one after another. Task t0_0 writes index.html."""
    kind, size = shape.split(":")
    levels, width = (int(n) for n in size.split("x")) if kind == "levels" else (int(size), 1)
    tasks: list[Task] = []
    for level in range(levels):
        before = tuple(f"t{level - 1}_{i}" for i in range(width)) if level else ()
        for index in range(width):
            task_id = f"t{level}_{index}"
            target = "index.html" if task_id == "t0_0" else f"parts/{task_id}.html"
            tasks.append(
                Task(
                    id=task_id,
                    type=TaskType.CREATE_FILE,
                    name=task_id,
                    description=f"write {target}",
                    input=TaskInput(prompt=prompt, target_path=target, dependencies=before),
                )
            )
    return tuple(tasks)


class ShapedProbeProvider(ProbeOfflineProvider):
    """Plans SHEEN_TEST_PLAN_SHAPE (see shaped_tasks); each call takes SHEEN_TEST_TASK_SLEEP_S
    and is recorded. With SHEEN_TEST_BARRIER=N, a call first waits (up to 30 s) until N calls
    are in flight at once, and fails if they never are: a build that runs its tasks one by one
    cannot pass it."""

    in_flight: ClassVar[dict[str, int]] = {}
    most_in_flight: ClassVar[dict[str, int]] = {}

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        tasks = shaped_tasks(os.environ["SHEEN_TEST_PLAN_SHAPE"], request.prompt)
        yield from tasks
        yield PlanDraft("a shaped plan", tasks, TokenUsage())

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        build, now, most = plan.build_id, self.in_flight, self.most_in_flight
        now[build] = now.get(build, 0) + 1
        most[build] = max(most.get(build, 0), now[build])
        try:
            barrier = int(os.environ.get("SHEEN_TEST_BARRIER", "0"))
            with anyio.move_on_after(30):
                while most[build] < barrier:
                    await anyio.sleep(0.01)
            if most[build] < barrier:
                raise ProviderError(f"task {task.id}: {barrier} calls were never in flight")
            return await super().generate_files(task, plan, context_files)
        finally:
            now[build] -= 1

    def render_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        page = f"<!DOCTYPE html><title>{task.id}</title><h1>{task.id}</h1>"
        return GeneratedFiles({task.input.target_path: page}, TokenUsage())


class WorkerTestProvider(OfflineProvider):
    """For builds on Celery workers that share no disk: each task takes SHEEN_TEST_TASK_SLEEP_S
    (so a test can kill a worker mid-task), and the task named by SHEEN_TEST_FAIL_TASK fails for
    good while the file SHEEN_TEST_CONTROL/fail exists (test control, not build data)."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        await anyio.sleep(float(os.environ.get("SHEEN_TEST_TASK_SLEEP_S", "0")))
        failing = Path(os.environ.get("SHEEN_TEST_CONTROL", "/nonexistent")) / "fail"
        if task.id == os.environ.get("SHEEN_TEST_FAIL_TASK") and failing.exists():
            raise ProviderError(f"injected permanent failure in task {task.id}")
        return await super().generate_files(task, plan, context_files)
