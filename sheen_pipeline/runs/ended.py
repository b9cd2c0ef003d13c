"""A run that ended, however it ended: the pool slots its steps claimed are given back (a run
that died sending its steps, its broker away, never returns them itself), and why it failed is
said in one line."""

from __future__ import annotations

from dagster import DagsterInstance


def free_pool_slots(instance: DagsterInstance, run_id: str) -> None:
    """Give back every pool slot the run still holds or waits for; for a run that ended."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if run_id in storage.get_concurrency_run_ids():  # a read: most runs gave them all back
        storage.free_concurrency_slots_for_run(run_id)


def failure_reason(instance: DagsterInstance, run_id: str) -> str:
    """A failed step's own description (a refusal), else the last error the run recorded: the
    exception that ended it, not Dagster's wrapper around it, as one line."""
    innermost = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.is_step_failure:
            described = event.step_failure_data.user_failure_data
            if described is not None and described.description:
                return described.description
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.message.startswith("dagster") and error.cause:
            error = error.cause
        if error is not None:
            innermost = error.message.strip().splitlines()[0]
    return innermost or f"run {run_id} failed"
