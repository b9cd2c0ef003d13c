"""The per-build job: one `run_task` node per planned task, then `build_site`, `deploy_preview`
and `check_preview`; then, for each repair round (SHEEN_REPAIR_ROUNDS), `repair_n` and the same
three again, run only when the check before failed."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    Backoff,
    DependencyDefinition,
    Failure,
    GraphDefinition,
    In,
    Jitter,
    JobDefinition,
    MetadataValue,
    MultiDependencyDefinition,
    NodeInvocation,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    ResourceDefinition,
    ResourceParam,
    RetryPolicy,
    op,
)

from sheen_pipeline import steps
from sheen_pipeline.checks.repair import failure_lines
from sheen_pipeline.config import Settings
from sheen_pipeline.defs.executor import build_executor
from sheen_pipeline.defs.metadata import (
    change_metadata,
    check_evaluation,
    cost_metadata,
    preview_metadata,
)
from sheen_pipeline.defs.resources import BuildServiceResource, pipeline_resources
from sheen_pipeline.models import Deployed, Plan, TaskResult
from sheen_pipeline.runs.names import build_job_name, dagster_name, id_from_dagster_name
from sheen_pipeline.runs.pools import LLM_POOL
from sheen_pipeline.runs.tags import build_tags
from sheen_pipeline.service import BuildService, BuildSummary
from sheen_pipeline.steps import StepFailed, StepRun

ROUND_SUFFIX = re.compile(r"_(\d+)$")


def retry_policy(settings: Settings) -> RetryPolicy:
    """Exponential backoff with jitter, bounded by SHEEN_TASK_RETRIES."""
    return RetryPolicy(
        max_retries=settings.task_retries,
        delay=settings.task_retry_delay_s,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


@contextmanager
def build_step(
    context: OpExecutionContext, service: BuildService, plan: Plan, label: str
) -> Iterator[bool]:
    """steps.build_step, mapped onto Dagster: a StepRetry is left to the retry policy, a
    StepFailed becomes a Failure that is not retried, carrying what the build spent."""
    step = StepRun(
        plan.build_id, context.run_id, context.op_handle.name, label, context.retry_number
    )
    try:
        with steps.build_step(service, step) as retries_left:
            yield retries_left
    except StepFailed as failed:
        raise Failure(
            description=str(failed),
            metadata={
                "cost_usd": cost_metadata(failed.spent.cost_usd),
                "total_tokens": failed.spent.total_tokens,
            },
            allow_retries=False,
        ) from None


@op(
    ins={"upstream": In(list, default_value=[], description="Results of the tasks this one needs")},
    out=Out(TaskResult),
    pool=LLM_POOL,
)
async def run_task(
    context: OpExecutionContext,
    sheen: BuildServiceResource,
    plan: ResourceParam[Plan],
    upstream: list[TaskResult],
) -> TaskResult:
    """Generate and write the files of the task this node is named after; async, so the
    build's independent tasks wait on their provider calls at the same time."""
    task_id = task_id_of_node(context.op_handle.name)
    attempt = context.retry_number + 1
    with build_step(context, sheen.service, plan, f"task {task_id}") as retries_left:
        result = await sheen.service.run_task(plan, task_id, upstream, attempt, retries_left)
    context.add_output_metadata(
        {
            "files": MetadataValue.json([f.path for f in result.files]),
            "total_tokens": result.usage.total_tokens,
            "cost_usd": cost_metadata(result.usage.cost_usd),
            "heals": result.heals,
            "cache_hit": result.cache_hit,
            "attempt": attempt,
        }
    )
    return result


@op(
    ins={"results": In(list, default_value=[])},
    out=Out(BuildSummary),
)
def build_site(
    context: OpExecutionContext,
    sheen: BuildServiceResource,
    plan: ResourceParam[Plan],
    results: list[TaskResult],
) -> BuildSummary:
    """Copy the workspace into the dist folder; the site must have an index.html."""
    with build_step(context, sheen.service, plan, "build"):
        summary = sheen.service.build_site(plan, results)
    for entry in summary.command_log:
        context.log.info(entry)
    return summary


@op(ins={"after": In(Nothing)}, out=Out(Deployed))
def deploy_preview(
    context: OpExecutionContext, sheen: BuildServiceResource, plan: ResourceParam[Plan]
) -> Deployed:
    """Publish dist at a preview URL of its own on the deploy target."""
    with build_step(context, sheen.service, plan, "deploy"):
        return sheen.service.deploy_preview(plan)


@op(
    out={
        "preview_url": Out(str, is_required=False, description="When the build succeeded"),
        "failures": Out(list, is_required=False, description="What a repair round must fix"),
    }
)
def check_preview(
    context: OpExecutionContext,
    sheen: BuildServiceResource,
    plan: ResourceParam[Plan],
    summary: BuildSummary,
    deployed: Deployed,
) -> Iterator[Output[Any]]:
    """Check the preview in a real browser and record it as an asset of the project, with its
    screenshots and each check's result. Then the build ends (succeeded, or failed on a blocking
    check), or, with a repair round left, the failures go to the next repair."""
    round_number = round_of(context.op_handle.name)
    service = sheen.service
    with build_step(context, service, plan, "check"):
        report = service.check_preview(plan, round_number)
        repairable = (
            bool(report.blocking_failures) and round_number < service.settings.repair_rounds
        )
        ending = None if repairable else service.complete(plan, summary, deployed, report)
        changes = service.change_diff(plan.build_id, keep=True)
        fixed = service.repaired(plan.build_id, round_number, report)
    preview_key = AssetKey(["sheen", plan.request.project_id, "preview"])
    context.log_event(
        AssetMaterialization(
            asset_key=preview_key,
            description=f"Preview of build {plan.build_id}",
            metadata={
                **preview_metadata(
                    plan,
                    summary,
                    deployed,
                    report,
                    ending,
                    {
                        n: service.settings.screenshot_url(plan.build_id, n, round_number)
                        for n in report.screenshots
                    },
                ),
                **change_metadata(changes),
                "repair_rounds": round_number,
                "fixed_by_repair": MetadataValue.json(fixed),
            },
        )
    )
    for result in report.results:  # log_event takes check evaluations; its hint omits them
        context.log_event(check_evaluation(preview_key, result))  # type: ignore[arg-type]
    if ending is None:
        yield Output(failure_lines(report, deployed.url), "failures")
    elif ending.failed is not None:
        raise Failure(description=f"preview checks failed: {ending.failed}")
    else:
        yield Output(ending.preview_url, "preview_url")


@op(ins={"failures": In(list)}, out=Out(TaskResult), pool=LLM_POOL)
async def repair(
    context: OpExecutionContext,
    sheen: BuildServiceResource,
    plan: ResourceParam[Plan],
    failures: list[str],
) -> TaskResult:
    """A repair round: the model gets the failed checks and the site's files, and fixes them."""
    round_number = round_of(context.op_handle.name)
    with build_step(context, sheen.service, plan, f"repair round {round_number}"):
        result = await sheen.service.repair(plan, round_number, failures)
    context.add_output_metadata(
        {
            "files": MetadataValue.json([f.path for f in result.files]),
            "total_tokens": result.usage.total_tokens,
            "cost_usd": cost_metadata(result.usage.cost_usd),
        }
    )
    return result


def round_of(node_name: str) -> int:
    """0 for the first build, deploy and check; n for those of repair round n (`_n`)."""
    match = ROUND_SUFFIX.search(node_name)
    return int(match.group(1)) if match else 0


Dependencies = dict[NodeInvocation, dict[str, DependencyDefinition | MultiDependencyDefinition]]


def _repair_rounds(rounds: int) -> Dependencies:
    """Round n: repair_n (fed by the previous check's failures), then build, deploy and check
    again; a round runs only when the check before it asked for it."""
    deps: Dependencies = {}
    for n in range(1, rounds + 1):
        previous = "check_preview" if n == 1 else f"check_preview_{n - 1}"
        deps[NodeInvocation("repair", alias=f"repair_{n}")] = {
            "failures": DependencyDefinition(previous, "failures")
        }
        deps[NodeInvocation("build_site", alias=f"build_site_{n}")] = {
            "results": MultiDependencyDefinition([DependencyDefinition(f"repair_{n}")])
        }
        deps[NodeInvocation("deploy_preview", alias=f"deploy_preview_{n}")] = {
            "after": DependencyDefinition(f"build_site_{n}")
        }
        deps[NodeInvocation("check_preview", alias=f"check_preview_{n}")] = {
            "summary": DependencyDefinition(f"build_site_{n}"),
            "deployed": DependencyDefinition(f"deploy_preview_{n}"),
        }
    return deps


def task_id_of_node(node_name: str) -> str:
    """The task a `run_task` node was named after (by dagster_name)."""
    task_id = id_from_dagster_name(node_name)
    if task_id is None:
        raise Failure(description=f"node {node_name} is not a task of this build")
    return task_id


def _task_dependencies(plan: Plan, policy: RetryPolicy) -> Dependencies:
    deps: Dependencies = {}
    for task in plan.tasks:
        upstream = [DependencyDefinition(dagster_name(dep)) for dep in task.input.dependencies]
        node = NodeInvocation("run_task", alias=dagster_name(task.id), retry_policy=policy)
        deps[node] = {"upstream": MultiDependencyDefinition(upstream)} if upstream else {}
    return deps


def make_build_job(plan: Plan, settings: Settings) -> JobDefinition:
    """A deterministic job from a stored plan: same plan and settings, same job, in every
    process. `settings` are the code location's (retries, repair rounds and the executor shape
    the job before any run exists)."""
    dependencies: Dependencies = {
        **_task_dependencies(plan, retry_policy(settings)),
        NodeInvocation("build_site"): {
            "results": MultiDependencyDefinition(
                [DependencyDefinition(dagster_name(t.id)) for t in plan.tasks]
            )
        },
        NodeInvocation("deploy_preview"): {"after": DependencyDefinition("build_site")},
        NodeInvocation("check_preview"): {
            "summary": DependencyDefinition("build_site"),
            "deployed": DependencyDefinition("deploy_preview"),
        },
        **_repair_rounds(settings.repair_rounds),
    }
    graph = GraphDefinition(
        name=build_job_name(plan.build_id),
        description=f"{plan.summary} ({len(plan.tasks)} tasks, planned by {plan.provider})",
        node_defs=[
            run_task,
            build_site,
            deploy_preview,
            check_preview,
            *([repair] if settings.repair_rounds else []),
        ],
        dependencies=dependencies,
    )
    return graph.to_job(
        resource_defs={
            **pipeline_resources(),
            "plan": ResourceDefinition.hardcoded_resource(plan, "The stored plan of this build"),
        },
        tags=build_tags(plan),
        executor_def=build_executor(settings),
    )
