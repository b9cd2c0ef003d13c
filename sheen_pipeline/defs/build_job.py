"""The per-build job: one `run_task` node per planned task, then `build_site` and `deploy_preview`."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import (
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
    OpExecutionContext,
    Out,
    ResourceDefinition,
    ResourceParam,
    RetryPolicy,
    op,
)

from sheen_pipeline.approval import check_may_run
from sheen_pipeline.config import Settings
from sheen_pipeline.defs.executor import pool_safe_async_executor
from sheen_pipeline.defs.metadata import cost_metadata
from sheen_pipeline.defs.resources import BuildServiceResource, build_service_resource
from sheen_pipeline.logs import log_context
from sheen_pipeline.models import Plan, TaskResult
from sheen_pipeline.redaction import redact
from sheen_pipeline.runs.names import build_job_name, dagster_name, id_from_dagster_name
from sheen_pipeline.runs.pools import LLM_POOL
from sheen_pipeline.runs.tags import build_tags
from sheen_pipeline.service import BuildService, BuildSummary, is_transient


class TransientStepError(RuntimeError):
    """A step failure worth retrying (the task's retry policy does); its message is redacted."""


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
    context: OpExecutionContext, service: BuildService, plan: Plan, step: str
) -> Iterator[bool]:
    """One step of the build (sync or async op); yields whether the step has retries left. A
    transient error with retries left is raised for the retry policy; any other failure is
    recorded on the build (build_failed) and raised as a Failure that is not retried. Error text
    is redacted before Dagster stores it."""
    retries_left = context.retry_number < service.settings.task_retries
    ids = {"build_id": plan.build_id, "run_id": context.run_id, "step": context.op_handle.name}
    with log_context(**ids):
        try:
            check_may_run(service, plan.build_id)
            service.start_run(plan.build_id, context.run_id)
            service.check_time_left(plan.build_id)
            yield retries_left
        except Exception as error:
            message = redact(str(error), service.settings.secrets)
            if retries_left and is_transient(error):
                raise TransientStepError(message) from None
            spent = service.fail(plan.build_id, f"{step} failed: {message}")
            raise Failure(
                description=f"{step} failed: {message}",
                metadata={
                    "cost_usd": cost_metadata(spent.cost_usd),
                    "total_tokens": spent.total_tokens,
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


@op(out=Out(str))
def deploy_preview(
    context: OpExecutionContext,
    sheen: BuildServiceResource,
    plan: ResourceParam[Plan],
    summary: BuildSummary,
) -> str:
    """Publish dist to the preview server and record the preview as an asset of the project."""
    with build_step(context, sheen.service, plan, "deploy"):
        deployment = sheen.service.deploy_preview(plan, summary)
    usage = summary.usage
    context.log_event(
        AssetMaterialization(
            asset_key=["sheen", plan.request.project_id, "preview"],
            description=f"Preview of build {plan.build_id}",
            metadata={
                "build_id": plan.build_id,
                "preview_url": MetadataValue.url(deployment.preview_url),
                "target": deployment.deployed.target,
                "uploaded_files": deployment.deployed.uploaded_files,
                "reused_files": deployment.deployed.reused_files,
                "uploaded_bytes": deployment.deployed.uploaded_bytes,
                "reused_bytes": deployment.deployed.reused_bytes,
                "files": MetadataValue.json([f.path for f in deployment.files]),
                "file_count": len(deployment.files),
                "total_tokens": usage.total_tokens,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": cost_metadata(usage.cost_usd),
                "heals": summary.heals,
                "cache_hits": summary.cache_hits,
                "builder": summary.builder,
                "task_count": summary.task_count,
                "duration_s": deployment.duration_s,
                "cost_anomaly": deployment.anomaly is not None,
                **(
                    {"cost_median_usd": float(deployment.anomaly.median_usd)}
                    if deployment.anomaly
                    else {}
                ),
            },
        )
    )
    return deployment.preview_url


Dependencies = dict[NodeInvocation, dict[str, DependencyDefinition | MultiDependencyDefinition]]


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


def make_build_job(plan: Plan) -> JobDefinition:
    """A deterministic job from a stored plan: same plan, same job, in every process."""
    settings = Settings.from_env()
    dependencies: Dependencies = {
        **_task_dependencies(plan, retry_policy(settings)),
        NodeInvocation("build_site"): {
            "results": MultiDependencyDefinition(
                [DependencyDefinition(dagster_name(t.id)) for t in plan.tasks]
            )
        },
        NodeInvocation("deploy_preview"): {"summary": DependencyDefinition("build_site")},
    }
    graph = GraphDefinition(
        name=build_job_name(plan.build_id),
        description=f"{plan.summary} ({len(plan.tasks)} tasks, planned by {plan.provider})",
        node_defs=[run_task, build_site, deploy_preview],
        dependencies=dependencies,
    )
    return graph.to_job(
        resource_defs={
            "sheen": build_service_resource(),
            "plan": ResourceDefinition.hardcoded_resource(plan, "The stored plan of this build"),
        },
        tags=build_tags(plan),
        executor_def=pool_safe_async_executor.configured(
            {"max_concurrent": settings.max_parallel_tasks}, name="build_executor"
        ),
    )
