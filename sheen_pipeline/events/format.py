"""One readable line per build event, for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sheen_pipeline.events.types import BuildEvent, EventType


def _task(data: dict[str, Any]) -> str:
    task = data["task"]
    return f"plan_partial: task {task['id']} ({task['type']} {task['input']['target_path']})"


def _cost(data: dict[str, Any]) -> str:
    cost = data["usage"]["cost_usd"]
    return "cost unknown" if cost is None else f"cost ${cost}"


_LINES: dict[EventType, Callable[[dict[str, Any]], str]] = {
    EventType.BUILD_STARTED: lambda d: (
        "re-execution started" if d.get("reexecution") else "planning"
    ),
    EventType.PLAN_PARTIAL: _task,
    EventType.PLAN_PARTIAL_RETRACTED: lambda d: (
        f"plan_partial retracted: {', '.join(d['task_ids'])} (the answer was replaced)"
    ),
    EventType.PLAN_GENERATED: lambda d: (
        f"plan ready with {len(d['tasks'])} tasks (provider {d['provider']}, model {d['model']})"
    ),
    EventType.PLAN_WARNING: lambda d: f"plan_warning: {d['warning']}",
    EventType.PLAN_BLOCKED: lambda d: f"plan blocked, waiting for approval: cycles {d['cycles']}",
    EventType.TASK_STARTED: lambda d: f"task {d['task_id']} started",
    EventType.TASK_COMPLETED: lambda d: (
        f"task {d['task_id']} done: {', '.join(f['path'] for f in d['files'])}"
    ),
    EventType.TASK_FAILED: lambda d: f"task {d['task_id']} failed: {d['error']}",
    EventType.TASK_TIMEOUT: lambda d: f"task {d['task_id']} timed out after {d['timeout_s']}s",
    EventType.BUILD_STEP_STARTED: lambda d: f"build started ({d['builder']})",
    EventType.DEPLOY_STARTED: lambda d: f"deploy started ({d['target']})",
    EventType.BUILD_COMPLETED: lambda d: f"build completed: {d['preview_url']} ({_cost(d)})",
    EventType.BUILD_FAILED: lambda d: f"build failed: {d['reason']}",
}


def describe(event: BuildEvent) -> str:
    return _LINES[event.type](event.data)
