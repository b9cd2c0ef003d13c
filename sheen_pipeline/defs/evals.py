"""Evaluations in the UI: an asset per suite (`sheen/eval/<suite>`), partitioned by model (a new
model id adds a partition), materialized by the `eval_suite` job launched from the Launchpad with
the suite and model as config. The totals are numeric metadata, so the UI plots pass rate and cost
per working app over time per model; the per-case table is markdown."""

from decimal import Decimal
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    Config,
    DynamicPartitionsDefinition,
    MetadataValue,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from sheen_pipeline.evals.report import EvalReport
from sheen_pipeline.evals.saved import SUITES_DIR
from sheen_pipeline.runs.evaluate import EvalOrder, evaluate

EVAL_MODELS = DynamicPartitionsDefinition(name="eval_models")
GROUP = "sheen_evals"


def eval_key(suite: str) -> AssetKey:
    return AssetKey(["sheen", "eval", suite])


def eval_assets() -> list[AssetSpec]:
    """One per suite file in evals/."""
    return [
        AssetSpec(
            eval_key(path.stem),
            group_name=GROUP,
            partitions_def=EVAL_MODELS,
            description=f"How many apps of the {path.stem} suite work, by model (sheen eval).",
        )
        for path in sorted(SUITES_DIR.glob("*.yaml"))
    ]


class EvalConfig(Config):
    suite: str = Field(default="core", description="A suite in evals/ (or a file's path).")
    model: str = Field(default="", description="The model to evaluate; empty: SHEEN_MODEL.")
    provider: str = Field(default="", description="anthropic, openai or offline; empty: as set.")
    cases: list[str] = Field(default=[], description="Only these case ids; empty: every case.")
    repeat: int = Field(default=1, ge=1, description="Builds per case.")
    budget_usd: float | None = Field(default=None, description="Start no case past this spend.")


def eval_metadata(report: EvalReport) -> dict[str, Any]:
    """The report's totals (numbers, or absent when there was nothing to measure), the eval's
    id, and the per-case table."""
    totals = {name: value for name, value in report.totals().items() if value is not None}
    return {
        **totals,
        "eval_id": report.eval_id,
        "provider": report.provider,
        "model": report.model,
        "cases": MetadataValue.md(report.table()),
    }


@op
def evaluate_suite(context: OpExecutionContext, config: EvalConfig) -> None:
    budget = None if config.budget_usd is None else Decimal(str(config.budget_usd))
    order = EvalOrder(
        config.suite, config.model, config.provider, tuple(config.cases), config.repeat, budget
    )
    report = evaluate(context.instance, order, context.log.info)
    context.instance.add_dynamic_partitions(EVAL_MODELS.name, [report.model])  # type: ignore[arg-type]
    context.log_event(
        AssetMaterialization(
            asset_key=eval_key(report.suite),
            partition=report.model,
            description=report.summary(),
            metadata=eval_metadata(report),
        )
    )


@job(
    name="eval_suite",
    executor_def=in_process_executor,
    description="Build every case of a suite and take its hidden steps (sheen eval).",
)
def eval_suite() -> None:
    evaluate_suite()
