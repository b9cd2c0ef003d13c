"""Run one planned task: gather its upstream files, ask the provider (within a time limit), and
write the result safely."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import cast

from sheen_pipeline.execution.timeouts import within
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import FileArtifact, Plan, Task, TaskResult, TaskType, TokenUsage
from sheen_pipeline.providers.base import GeneratedFiles, ImageProvider, Provider


class TaskFailed(RuntimeError):
    """A task could not produce its files; the message says why."""


def context_files(
    task: Task,
    upstream: Sequence[TaskResult],
    workspace: Workspace,
    read: Callable[[FileArtifact], str],
) -> dict[str, str]:
    """Files the task may build on: those of its upstream tasks (read by their content hash, as
    they were written, wherever that was), plus the file it modifies."""
    files = {a.path: read(a) for result in upstream for a in result.files}
    target = task.input.target_path
    if task.type is TaskType.MODIFY_FILE and target not in files:
        if not workspace.exists(target):
            raise TaskFailed(f"task {task.id!r} modifies {target!r}, which no earlier task wrote")
        files[target] = workspace.read(target)
    return files


async def generate(
    task: Task,
    plan: Plan,
    provider: Provider,
    context: Mapping[str, str],
    timeout_s: float,
    images: Sequence[bytes] = (),
) -> GeneratedFiles:
    """The provider call is cancelled after timeout_s (TaskTimeout); it never writes files.
    Images (screenshots) go only to providers that take them."""
    if images and provider.takes_images:
        call = cast(ImageProvider, provider).generate_files(task, plan, context, images)
    else:
        call = provider.generate_files(task, plan, context)
    generated = await within(call, timeout_s, f"task {task.id}")
    if not generated.files:
        raise TaskFailed(f"task {task.id!r}: the provider returned no files")
    return generated


def write_files(
    task: Task,
    files: Mapping[str, str],
    workspace: Workspace,
    usage: TokenUsage,
    heals: int = 0,
    cache_hit: bool = False,
) -> TaskResult:
    artifacts = tuple(workspace.write(path, files[path]) for path in sorted(files))
    return TaskResult(
        task_id=task.id, files=artifacts, usage=usage, heals=heals, cache_hit=cache_hit
    )
