"""Metadata values shared by the ops: costs the UI can plot, the preview asset's record, and
each browser check as an asset check evaluation."""

from decimal import Decimal
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    FloatMetadataValue,
    MetadataValue,
    TextMetadataValue,
)

from sheen_pipeline.checks.results import CheckReport, CheckResult
from sheen_pipeline.models import Deployed, Plan
from sheen_pipeline.service import BuildSummary, Deployment
from sheen_pipeline.versions.diff import VersionDiff


def cost_metadata(cost_usd: Decimal | None) -> FloatMetadataValue | TextMetadataValue:
    """A float the UI can plot, or text when the model's price is unknown (never a fake 0)."""
    if cost_usd is None:
        return MetadataValue.text("unknown")
    return MetadataValue.float(float(cost_usd))


def change_metadata(changes: VersionDiff | None) -> dict[str, Any]:
    """A change's record against its base: counts, and the diff (trimmed; `sheen diff` and the
    build's `changes` artifact hold it whole). Nothing for a build from scratch."""
    if changes is None:
        return {}
    return {
        **changes.summary(),
        "diff": MetadataValue.md(f"```diff\n{changes.trimmed()}\n```"),
    }


def preview_metadata(
    plan: Plan,
    summary: BuildSummary,
    deployed: Deployed,
    report: CheckReport,
    ending: Deployment | None,
    screenshot_urls: dict[str, str],
) -> dict[str, Any]:
    """The preview's record; `ending` is None when a repair round follows. Screenshots are
    links to `sheen serve` (/s/<build_id>/), shown as images in the UI when it runs."""
    usage = summary.usage if ending is None else ending.usage
    screenshots: dict[str, Any] = {
        f"screenshot_{name}": MetadataValue.url(url) for name, url in screenshot_urls.items()
    }
    if screenshot_urls:
        images = " ".join(f"![{name}]({url})" for name, url in screenshot_urls.items())
        screenshots["screenshots"] = MetadataValue.md(images)
    return {
        "build_id": plan.build_id,
        "preview_url": MetadataValue.url(deployed.url),
        "target": deployed.target,
        "uploaded_files": deployed.uploaded_files,
        "reused_files": deployed.reused_files,
        "uploaded_bytes": deployed.uploaded_bytes,
        "reused_bytes": deployed.reused_bytes,
        "files": MetadataValue.json([f.path for f in deployed.files]),
        "file_count": len(deployed.files),
        "total_tokens": usage.total_tokens,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": cost_metadata(usage.cost_usd),
        "heals": summary.heals,
        "cache_hits": summary.cache_hits,
        "builder": summary.builder,
        "task_count": summary.task_count,
        **({"duration_s": ending.duration_s} if ending else {}),
        "checks": MetadataValue.md("\n".join(f"- {result.line()}" for result in report.results)),
        **screenshots,
        "cost_anomaly": ending is not None and ending.anomaly is not None,
        **(
            {"cost_median_usd": float(ending.anomaly.median_usd)}
            if ending and ending.anomaly
            else {}
        ),
    }


def check_evaluation(asset_key: AssetKey, result: CheckResult) -> AssetCheckEvaluation:
    """A blocking check has severity ERROR whether it passed or not (the UI shows what it
    would have stopped); one that was not run is reported as a failed warning, never a pass."""
    ran_blocking = result.blocking and result.passed is not None
    return AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=result.name,
        passed=bool(result.passed),
        severity=AssetCheckSeverity.ERROR if ran_blocking else AssetCheckSeverity.WARN,
        description=result.message,
        blocking=result.blocking,
        metadata={"message": result.message, "not_run": result.passed is None},
    )
