"""Housekeeping on a schedule: expired results leave the result cache every hour."""

from dagster import (
    DefaultScheduleStatus,
    OpExecutionContext,
    ScheduleDefinition,
    in_process_executor,
    job,
    op,
)

from sheen_pipeline.defs.resources import BuildServiceResource, pipeline_resources


@op
def evict_expired_results(context: OpExecutionContext, sheen: BuildServiceResource) -> int:
    evicted = sheen.service.cache.evict_expired()
    context.log.info(f"evicted {evicted} expired cached results")
    return evicted


@job(
    executor_def=in_process_executor,
    resource_defs=pipeline_resources(),
    description="Delete expired entries of the result cache (SHEEN_RESULT_CACHE_TTL_S).",
)
def evict_result_cache() -> None:
    evict_expired_results()


hourly_result_cache_eviction = ScheduleDefinition(
    name="hourly_result_cache_eviction",
    job=evict_result_cache,
    cron_schedule="0 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
)
