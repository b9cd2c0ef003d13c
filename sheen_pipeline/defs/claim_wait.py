"""One fix of Dagster 1.13's pool claims, installed when the code location is imported (every
process that runs steps imports it: code servers, run workers, the CLI).

`InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns `min(0, ...)`, which is
never above 0. So a run whose ready steps all wait on a pool slot never sleeps between its claim
checks: the in-process executor (the plan job, when more plans than the `plan` pool's slots run
at once, as CLI builds do) spins a CPU core until a slot frees. Here the wait is the time until
the earliest pending claim is due to be asked again (Dagster's own backoff, 1 s growing to 15 s),
never below 0. The upstream report: docs/upstream/dagster-pool-claim-wait.md; a test fails once
Dagster's own method is right, so this is removed then."""

from __future__ import annotations

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

DAGSTERS_INTERVAL = InstanceConcurrencyContext.interval_to_next_pending_claim_check


def seconds_to_next_claim_check(context: InstanceConcurrencyContext) -> float:
    """How long a run with pending pool claims may sleep before one of them is due again."""
    pending = context._pending_claims
    if not pending:
        return 0.0
    due: float = min(context._pending_timeouts.get(step_key, 0.0) for step_key in pending)
    return max(0.0, due - time.time())


def install() -> None:
    setattr(  # noqa: B010 (a method of Dagster's class, replaced on purpose)
        InstanceConcurrencyContext,
        "interval_to_next_pending_claim_check",
        seconds_to_next_claim_check,
    )
