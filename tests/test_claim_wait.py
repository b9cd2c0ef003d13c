"""defs/claim_wait.py: a run whose step waits on a full pool sleeps until its next claim check
instead of spinning (docs/upstream/dagster-pool-claim-wait.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, in_process_executor, instance_for_test, job, op
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

import sheen_pipeline.defs  # noqa: F401  (installs the fix, as every process running steps does)
from sheen_pipeline.defs.claim_wait import DAGSTERS_INTERVAL
from tests.support.waiting import wait_for

POOL = "claim-wait"


@op(pool=POOL)
def pooled() -> None:
    """Needs the pool's one slot."""


@job(executor_def=in_process_executor)
def one_pooled_step() -> None:
    pooled()


def counted(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> list[object]:
    """Replace owner.name by a wrapper that records each call's result."""
    original: Callable[..., Any] = getattr(owner, name)
    calls: list[object] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(owner, name, wrapper)
    return calls


@pytest.fixture
def pooled_instance(tmp_path: Path) -> Any:
    overrides = {"concurrency": {"pools": {"granularity": "op"}}}
    with instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        yield instance


def test_a_step_waiting_on_a_full_pool_sleeps_between_its_claim_checks(
    pooled_instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = pooled_instance.event_log_storage
    assert storage.claim_concurrency_slot(POOL, "other-run", "other-step").is_claimed
    claims = counted(monkeypatch, type(storage), "claim_concurrency_slot")
    loops = counted(monkeypatch, ActiveExecution, "get_steps_to_execute")
    outcome: list[bool] = []
    run = threading.Thread(
        target=lambda: outcome.append(
            one_pooled_step.execute_in_process(instance=pooled_instance).success
        )
    )
    run.start()
    wait_for(lambda: len(claims) >= 3, 60, "three refused claims of the pooled step")
    storage.free_concurrency_slots_for_run("other-run")
    run.join(60)
    assert outcome == [True]
    # Each pass of the executor's loop either asks for the slot (when a check is due) or
    # sleeps until one is: a handful of passes, where the spinning loop made thousands.
    assert len(loops) <= len(claims) + 5, (len(loops), len(claims))


def test_dagsters_own_wait_is_still_zero_so_the_fix_is_still_needed() -> None:
    """Once Dagster returns the time to the next claim check itself, remove defs/claim_wait.py
    and this test (docs/upstream/dagster-pool-claim-wait.md)."""
    with instance_for_test() as instance:
        run = instance.create_run_for_job(one_pooled_step)
        with InstanceConcurrencyContext(instance, run) as context:
            context._pending_claims.add("pooled")
            context._pending_timeouts["pooled"] = time.time() + 10
            assert DAGSTERS_INTERVAL(context) <= 0, (
                "Dagster fixed its claim wait: see the docstring"
            )
            assert 9 < context.interval_to_next_pending_claim_check() <= 10
