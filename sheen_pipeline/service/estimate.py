"""The prompts a build's calls may send, bounded before the first of them, so that admission can
hold what they may cost: each task's call and its re-asks, and each repair round's (a step retry
of a failed task is not held: its calls are checked against the budget like any beyond the
hold). Sizes are in characters, as the meter counts them (`llm.estimate_tokens`).

What bounds them: the plan is known, so each task's instructions and spec are measured; the base
version's files have known sizes; and an answer is at most `max_tokens` tokens of at most
ANSWER_CHARS_PER_TOKEN characters each (a longer answer is refused unread), so the files a task
writes are at most what it was shown plus one answer. A file a task modifies that none of its
dependencies wrote is counted as its base size plus one answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sheen_pipeline.checks.repair import MAX_FAILURE_CHARS, repair_task
from sheen_pipeline.models import Plan, Task, TaskType
from sheen_pipeline.planning.dag import dependency_graph
from sheen_pipeline.providers import prompts
from sheen_pipeline.providers.base import CallBound
from sheen_pipeline.providers.healing import MAX_ERROR_CHARS, MAX_REASKS
from sheen_pipeline.providers.llm import ANSWER_CHARS_PER_TOKEN

FILE_WRAPPER_CHARS = 40  # `<file path="…">` and `</file>` around each file shown, besides its path
REASK_CHARS = MAX_ERROR_CHARS + 300  # what a re-ask adds besides the rejected answer
MESSAGE_CHARS = 200  # a target path and other short fields the measured text leaves out


@dataclass(frozen=True)
class BuildScope:
    """What besides the plan decides how large a build's prompts may grow."""

    base_sizes: Mapping[str, int] = field(default_factory=dict)  # the base version's files
    repair_rounds: int = 0
    repair_images: int = 0  # screenshots a repair round shows (0 for a model without images)


def build_calls(plan: Plan, scope: BuildScope, max_tokens: int) -> list[CallBound]:
    """Every call the build may make after planning, each at its largest."""
    answer = max_tokens * ANSWER_CHARS_PER_TOKEN  # the longest answer accepted
    system = sum(len(block.text) for block in prompts.task_system(plan))
    written = _written_bounds(plan, scope, answer)
    calls: list[CallBound] = []
    for task in plan.tasks:
        chars = system + _request_chars(task) + _context_chars(task, written, scope, answer)
        calls += _with_reasks(CallBound(chars), answer)
    site = sum(_shown(path, size) for path, size in scope.base_sizes.items())
    site += sum(written.values())
    for round_number in range(1, scope.repair_rounds + 1):
        task = repair_task(round_number, ["x" * MAX_FAILURE_CHARS], [])
        shown = CallBound(system + _request_chars(task) + site, scope.repair_images)
        calls += _with_reasks(shown, answer)
        site += answer  # a round's answer may grow the site it shows the next
    return calls


def _with_reasks(first: CallBound, answer: int) -> list[CallBound]:
    """A re-ask repeats the request with the rejected answer and what was wrong with it."""
    reask = CallBound(first.chars + answer + REASK_CHARS, first.images)
    return [first] + [reask] * MAX_REASKS


def _request_chars(task: Task) -> int:
    return sum(len(m["content"]) for m in prompts.task_request(task, {})) + MESSAGE_CHARS


def _shown(path: str, size: int) -> int:
    return size + len(path) + FILE_WRAPPER_CHARS


def _context_chars(task: Task, written: Mapping[str, int], scope: BuildScope, answer: int) -> int:
    """What the task is shown: its dependencies' files, and the file it modifies."""
    shown = sum(written[dependency] for dependency in task.input.dependencies)
    if task.type is TaskType.MODIFY_FILE:
        shown += _shown(task.input.target_path, scope.base_sizes.get(task.input.target_path, 0))
        shown += answer
    return shown


def _written_bounds(plan: Plan, scope: BuildScope, answer: int) -> dict[str, int]:
    """Per task, the most its files may hold as shown to another: what it was shown (edits
    apply to those files) plus its answer."""
    import networkx as nx

    written: dict[str, int] = {}
    for task_id in nx.topological_sort(dependency_graph(plan.tasks)):
        task = plan.task(task_id)
        written[task_id] = _context_chars(task, written, scope, answer) + answer
    return written
