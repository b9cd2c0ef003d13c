"""Global limits across all builds: Dagster concurrency pools for planning and LLM task ops."""

from __future__ import annotations

from dagster import DagsterInstance
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.config import Settings

PLAN_POOL = "plan"
LLM_POOL = "llm"


def pool_limits(settings: Settings) -> dict[str, int]:
    return {PLAN_POOL: settings.pool_plan_limit, LLM_POOL: settings.pool_llm_limit}


def set_pool_limits(
    instance: DagsterInstance, settings: Settings, *, only_missing: bool
) -> dict[str, int]:
    """Set the configured limits (all, or only pools with none yet, keeping an operator's
    choice made in the UI); returns what was set. Commands started at once on a fresh instance
    all find a pool without a limit: Dagster adds its row, and the loser of that race is told
    the row exists (an IntegrityError). With only_missing, the winner's limit stands; otherwise
    the limit is set again, now on the existing row."""
    storage = instance.event_log_storage
    existing = storage.get_concurrency_keys()
    applied = {}
    for pool, limit in pool_limits(settings).items():
        if only_missing and pool in existing:
            continue
        try:
            storage.set_concurrency_slots(pool, limit)
        except IntegrityError:
            if only_missing:
                continue
            storage.set_concurrency_slots(pool, limit)
        applied[pool] = limit
    return applied
