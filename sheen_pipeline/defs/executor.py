"""The build job's executor, chosen by SHEEN_EXECUTOR (configuration, not code):

- `async` (the default): dagster-async-executor runs the `async def` task ops of a run at the
  same time in one process (Dagster's own step machinery, retries, tag limits and pool claims),
  bounded by SHEEN_MAX_PARALLEL_TASKS.
- `celery`: dagster-celery's executor sends each step to a queue on SHEEN_CELERY_BROKER, where
  `dagster-celery worker start` workers on any machine take them (see deploy/celery/). Pool
  claims are still made by the run, so the `llm` pool limits task calls across all workers.

It carries one fix of dagster-async-executor 0.0.4: when every ready step waits on a concurrency
pool claim (more ready tasks than the `llm` pool has slots) or on a delayed retry, the executor
waited for an event with no time limit although no step was running to send one, and the run
hung. Here the wait is bounded while steps are parked, so their claims are checked again. The
upstream report: docs/upstream/dagster-async-executor-pool-claims.md; a test fails when the
installed version changes, so this is checked again then. (Dagster's own wait for a pending claim
is never above 0 either; defs/claim_wait.py fixes that, and the bound here stays for a claim that
is due at once and for delayed retries.)
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

from dagster import DagsterEvent, ExecutorDefinition, InitExecutorContext, executor
from dagster._core.execution.context.system import PlanExecutionContext
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster_async_executor.executor import AsyncExecutor
from dagster_async_executor.executor_definition import ASYNC_CONFIG

from sheen_pipeline.config import Settings

PARKED_STEP_POLL_S = 0.05


class _ParkedStepsPolled:
    """The run's ActiveExecution, except that it asks to be polled again soon while steps are
    parked (pending pool claims, delayed retries) instead of "wait for the next event"."""

    def __init__(self, active: ActiveExecution) -> None:
        self._active = active

    def __getattr__(self, name: str) -> Any:
        return getattr(self._active, name)

    def sleep_interval(self) -> float:
        interval: float = self._active.sleep_interval()  # type: ignore[no-untyped-call]
        claims = self._active._instance_concurrency_context
        parked = self._active._waiting_to_retry or (claims and claims.has_pending_claims())
        return max(interval, PARKED_STEP_POLL_S) if parked else interval


class PoolSafeAsyncExecutor(AsyncExecutor):  # type: ignore[misc]
    def _async_execution_iterator(
        self, job_context: PlanExecutionContext, active: ActiveExecution
    ) -> AsyncIterator[DagsterEvent]:
        events: AsyncIterator[DagsterEvent] = super()._async_execution_iterator(
            job_context, _ParkedStepsPolled(active)
        )
        return events


@executor(name="pool_safe_async_executor", config_schema=ASYNC_CONFIG)
def pool_safe_async_executor(init_context: InitExecutorContext) -> PoolSafeAsyncExecutor:
    config: dict[str, Any] = dict(init_context.executor_config)
    return PoolSafeAsyncExecutor(
        retries=RetryMode.from_config(config["retries"]),
        max_concurrent=config.get("max_concurrent"),
        tag_concurrency_limits=config.get("tag_concurrency_limits"),
        step_dependency_config=StepDependencyConfig.from_config(
            config.get("step_dependency_config")
        ),
    )


# A step whose worker dies mid-step goes back to the queue for another worker: the message is
# acknowledged only when the step ends (deploy/celery/worker.yaml sets the same for workers).
CELERY_DELIVERY = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}


@cache
def _quiet_celery_task_registration() -> None:
    """dagster-celery registers its one step task anew (same name and body, a new closure) for
    every step it sends; Celery warns about it as if two tasks shared a name. Once a process."""
    from celery.exceptions import DuplicateTaskNameWarning

    warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)


def build_executor(settings: Settings) -> ExecutorDefinition:
    if settings.executor == "celery":
        from dagster_celery import celery_executor  # imported only by the setups that use it

        _quiet_celery_task_registration()
        config = {
            "broker": settings.celery_broker,
            "backend": settings.celery_backend,
            "config_source": CELERY_DELIVERY,
        }
        return celery_executor.configured(config, name="build_executor")
    return pool_safe_async_executor.configured(
        {"max_concurrent": settings.max_parallel_tasks}, name="build_executor"
    )
