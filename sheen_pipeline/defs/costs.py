"""The cost dashboard: a daily-partitioned asset whose metadata holds each day's figures (the UI
plots them over the partitions), refreshed every hour for today (and once more for yesterday
after midnight), and materializable on demand from the UI."""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    schedule,
)

from sheen_pipeline.costs import COLUMNS, CostReport, Figures, by_cost, cells
from sheen_pipeline.defs.resources import BuildServiceResource

DAILY_COSTS = AssetKey(["sheen", "costs", "daily"])
DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)  # today included


def _table(title: str, table: Mapping[str, Figures]) -> MetadataValue:
    lines = [
        "| " + " | ".join((title, *COLUMNS)) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
        *("| " + " | ".join((name, *cells(figures))) + " |" for name, figures in by_cost(table)),
    ]
    return MetadataValue.md("\n".join(lines) if table else f"No {title}s.")


def report_metadata(report: CostReport) -> dict[str, Any]:
    """Numbers the UI plots over the days, and the day's tables."""
    totals = report.totals
    return {
        "cost_usd": float(totals.cost_usd),
        "calls": totals.calls,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cache_read_tokens": totals.cache_read_tokens,
        "cache_write_tokens": totals.cache_write_tokens,
        "failed_builds_usd": float(totals.failed_builds_usd),
        "prompt_cache_saved_usd": float(totals.prompt_cache_saved_usd),
        "result_cache_saved_usd": float(totals.result_cache_saved_usd),
        "unpriced_entries": totals.unpriced,
        "builds_succeeded": report.builds_succeeded,
        "builds_failed": report.builds_failed,
        "by_project": _table("project", report.groups["project"]),
        "by_user": _table("user", report.groups["user"]),
        "by_model": _table("model", report.groups["model"]),
    }


def day_bounds(partition_key: str) -> tuple[datetime, datetime]:
    start = datetime.combine(datetime.fromisoformat(partition_key).date(), time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


@asset(
    key=DAILY_COSTS,
    partitions_def=DAYS,
    group_name="costs",
    description=(
        "What one day (UTC) of builds cost: every paid call, failed builds' included; by "
        "project, user and model; and what the prompt and result caches saved."
    ),
)
def daily_costs(
    context: AssetExecutionContext, sheen: BuildServiceResource
) -> MaterializeResult[None]:
    report = sheen.service.cost_report(*day_bounds(context.partition_key))
    context.log.info(f"{context.partition_key}: ${report.totals.cost_usd:.4f}")
    return MaterializeResult(metadata=report_metadata(report))


daily_costs_job = define_asset_job("daily_costs_job", selection=[DAILY_COSTS], partitions_def=DAYS)


@schedule(
    job=daily_costs_job,
    cron_schedule="5 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every hour: today's cost partition; in the first hour of a day, yesterday's too.",
)
def hourly_cost_refresh(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    now = context.scheduled_execution_time.astimezone(UTC)
    days = [now.date()] + ([now.date() - timedelta(days=1)] if now.hour == 0 else [])
    for day in days:
        yield RunRequest(partition_key=day.isoformat(), run_key=f"{day}@{now:%Y-%m-%dT%H}")
