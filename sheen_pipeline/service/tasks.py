"""Running one task of a plan: a cached result, a model call within the task's time limit, or a
deletion (a change removing a file), written into the workspace and the artifact store."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from anyio import to_thread

from sheen_pipeline.budgets import BudgetExceeded, Payer, paying
from sheen_pipeline.events.payloads import (
    BudgetExceededEvent,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskTimedOut,
)
from sheen_pipeline.execution.tasks import context_files, generate
from sheen_pipeline.execution.timeouts import TaskTimeout
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import (
    Plan,
    Task,
    TaskResult,
    TaskType,
    TokenUsage,
    check_relative_path,
)
from sheen_pipeline.providers.base import ProviderError
from sheen_pipeline.service.accounting import Accounting
from sheen_pipeline.service.parts import BuildTimeLimit, owner_of
from sheen_pipeline.store.files import Stage


def is_transient(error: BaseException) -> bool:
    """Worth another attempt later: rate limits, overload, provider timeouts, connection errors."""
    return isinstance(error, ProviderError) and error.retryable


class Tasks(Accounting):
    """The task step of BuildService."""

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
                payer = Payer(build_id, *owner_of(plan.request), "task", task_id)
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
