"""The static `plan_build` job, launchable from the UI: validate, plan, submit the build's own run."""

from dataclasses import dataclass

from dagster import (
    Config,
    Failure,
    MetadataValue,
    Noneable,
    OpExecutionContext,
    Out,
    in_process_executor,
    job,
    op,
)
from dagster import Field as ConfigField
from pydantic import Field
from pydantic.fields import FieldInfo

from sheen_pipeline.approval import hold_for_approval
from sheen_pipeline.defs.metadata import cost_metadata
from sheen_pipeline.defs.resources import BuildServiceResource, pipeline_resources
from sheen_pipeline.models import (
    BuildRequest,
    InvalidRequest,
    Task,
    new_build_id,
    parse_build_id,
    parse_build_request,
)
from sheen_pipeline.planning.dag import PlanBlocked
from sheen_pipeline.planning.planner import PlanOutcome
from sheen_pipeline.redaction import redact
from sheen_pipeline.runs.launch import launch_build_run
from sheen_pipeline.runs.names import PLAN_JOB_NAME, build_job_name
from sheen_pipeline.runs.pools import PLAN_POOL
from sheen_pipeline.runs.tags import (
    BUILD_ID,
    MODEL,
    PLAN_RUN_TAGS,
    PROJECT_ID,
    PROVIDER,
    REQUEST_ID,
    USER_ID,
)


def _config_field(field: FieldInfo) -> ConfigField:
    if field.is_required():
        return ConfigField(str, description=field.description)
    kind = str if field.default is not None else Noneable(str)
    return ConfigField(
        kind, default_value=field.default, is_required=False, description=field.description
    )


REQUEST_CONFIG = {
    **{name: _config_field(field) for name, field in BuildRequest.model_fields.items()},
    "build_id": ConfigField(
        Noneable(str),
        default_value=None,
        is_required=False,
        description="Leave empty for a new id; callers that need it up front set it.",
    ),
}


class LaunchConfig(Config):
    submit: bool = Field(
        default=True,
        description="Submit the build's run to the run queue. The CLI turns this off and runs it.",
    )


@dataclass(frozen=True)
class BuildTicket:
    build_id: str
    request: BuildRequest


@op(config_schema=REQUEST_CONFIG, out=Out(BuildTicket))
def validate_request(context: OpExecutionContext, sheen: BuildServiceResource) -> BuildTicket:
    """Refuse a bad request before anything is spent on it (its config is BuildRequest's
    fields, plus an optional build id); a change's base is resolved here, and recorded on the
    request row it came from."""
    fields = dict(context.op_config)
    given_id = fields.pop("build_id")
    try:
        request = sheen.service.accept(parse_build_request(**fields))
        build_id = parse_build_id(given_id) if given_id else new_build_id()
    except InvalidRequest as error:
        raise Failure(description=f"invalid build request: {error}") from None
    request_id = context.run.tags.get(REQUEST_ID)
    if request_id is not None and request.base_build_id is not None:
        sheen.service.requests.record_base(request_id, request.base_build_id)
    return BuildTicket(build_id, request)


def _plan_metadata(outcome: PlanOutcome) -> dict[str, object]:
    plan = outcome.plan
    rows = "\n".join(
        f"| {t.id} | {t.type.value} | {t.input.target_path} | {t.priority} | "
        f"{', '.join(t.input.dependencies) or '-'} |"
        for t in plan.tasks
    )
    return {
        "build_id": plan.build_id,
        "build_job": build_job_name(plan.build_id),
        "task_count": len(plan.tasks),
        "tasks": MetadataValue.md(
            "| task | type | file | priority | needs |\n|---|---|---|---|---|\n" + rows
        ),
        "recovery": MetadataValue.json([step.model_dump() for step in plan.recovery]),
        "provider": plan.provider,
        "model": plan.model,
        "total_tokens": outcome.usage.total_tokens,
        "cost_usd": cost_metadata(outcome.usage.cost_usd),
        "estimated_cost_usd": cost_metadata(outcome.estimate_usd),
        "heals": plan.planning_heals,
    }


@op(out=Out(str), pool=PLAN_POOL)
def generate_plan(
    context: OpExecutionContext, sheen: BuildServiceResource, ticket: BuildTicket
) -> str:
    """Ask the provider for a plan, check it, make it acyclic and store it; returns the build id."""
    build_id, request = ticket.build_id, ticket.request
    context.instance.add_run_tags(
        context.run_id,
        {BUILD_ID: build_id, PROJECT_ID: request.project_id, USER_ID: request.user_id},
    )
    service = sheen.service

    def report_partial(task: Task) -> None:
        context.log.info(
            f"plan_partial: task {task.id} ({task.type.value} {task.input.target_path})"
        )

    try:
        outcome = service.plan(build_id, request, report_partial)
    except PlanBlocked as blocked:
        raise Failure(description=str(blocked)) from None
    except Exception as error:
        reason = redact(f"planning failed: {error}", service.settings.secrets)
        raise Failure(description=reason, allow_retries=False) from None
    plan = outcome.plan
    context.instance.add_run_tags(context.run_id, {PROVIDER: plan.provider, MODEL: plan.model})
    for warning in outcome.warnings:
        context.log.warning(f"plan_warning: {warning}")
    context.log.info(f"plan ready with {len(outcome.plan.tasks)} tasks for build {build_id}")
    context.add_output_metadata(_plan_metadata(outcome))
    return build_id


@op
def launch_build(
    context: OpExecutionContext, config: LaunchConfig, sheen: BuildServiceResource, build_id: str
) -> str:
    """Queue the build's own job (`build_<id>`); the daemon launches it. Returns its run id.
    With plan approval required, the build waits for `sheen approve` or a launch in the UI."""
    service = sheen.service
    if service.store.get_plan(build_id) is None:
        raise Failure(description=f"build {build_id} has no stored plan")
    if hold_for_approval(service, build_id):
        context.log.info(
            f"build {build_id} awaits approval: `sheen approve {build_id}`, or launch "
            f"{build_job_name(build_id)} in the UI; `sheen reject {build_id}` ends it"
        )
        return ""
    if not config.submit:
        context.log.info(f"not submitting build {build_id}: the caller runs it")
        return ""
    run = launch_build_run(context.instance, build_id, context.dagster_run)
    context.log.info(f"submitted run {run.run_id} of job {run.job_name}")
    return run.run_id


@job(
    name=PLAN_JOB_NAME,
    tags=PLAN_RUN_TAGS,
    executor_def=in_process_executor,
    resource_defs=pipeline_resources(),
    description="Plan a build from a prompt, then queue the build's own job (build_<id>).",
)
def plan_build() -> None:
    launch_build(generate_plan(validate_request()))
