"""Run one planned task: gather its upstream files, ask the provider, write the result safely."""

from __future__ import annotations

from collections.abc import Sequence

from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import Plan, Task, TaskResult, TaskType
from sheen_pipeline.providers.base import Provider


class TaskFailed(RuntimeError):
    """A task could not produce its files; the message says why."""


def context_files(
    task: Task, upstream: Sequence[TaskResult], workspace: Workspace
) -> dict[str, str]:
    """Files the task may build on: those of its upstream tasks, plus the file it modifies."""
    files = {a.path: workspace.read(a.path) for result in upstream for a in result.files}
    target = task.input.target_path
    if task.type is TaskType.MODIFY_FILE and target not in files:
        if not workspace.exists(target):
            raise TaskFailed(f"task {task.id!r} modifies {target!r}, which no earlier task wrote")
        files[target] = workspace.read(target)
    return files


def run_task(
    task: Task,
    plan: Plan,
    provider: Provider,
    workspace: Workspace,
    upstream: Sequence[TaskResult],
) -> TaskResult:
    generated = provider.generate_files(task, plan, context_files(task, upstream, workspace))
    if not generated.files:
        raise TaskFailed(f"task {task.id!r}: the provider returned no files")
    artifacts = tuple(
        workspace.write(path, generated.files[path]) for path in sorted(generated.files)
    )
    return TaskResult(
        task_id=task.id, files=artifacts, usage=generated.usage, heals=generated.heals
    )
