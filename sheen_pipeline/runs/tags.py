"""Run tag keys, shared by the ops, the repository, the sensors and the CLI."""

from __future__ import annotations

from sheen_pipeline.models import Plan

BUILD_ID = "sheen/build_id"
PROJECT_ID = "sheen/project_id"
USER_ID = "sheen/user_id"
PROVIDER = "sheen/provider"
MODEL = "sheen/model"
PLAN_RUN_ID = "sheen/plan_run_id"
REQUEST_ID = "sheen/request_id"
STAGE = "sheen/stage"
DAGSTER_PRIORITY = "dagster/priority"

# The run queue takes higher priorities first, and dagster.yaml keeps run slots for builds with a
# tag concurrency limit on plan runs: work already planned finishes before new plans start.
PLAN_RUN_TAGS = {STAGE: "plan"}
BUILD_RUN_TAGS = {STAGE: "build", DAGSTER_PRIORITY: "10"}

LOCATION_NAME = "sheen_pipeline"
REPOSITORY_NAME = "sheen"
CODE_MODULE = "sheen_pipeline.defs"


def build_tags(plan: Plan) -> dict[str, str]:
    """Deterministic tags of a per-build job: the same plan always yields the same job."""
    return {
        **BUILD_RUN_TAGS,
        BUILD_ID: plan.build_id,
        PROJECT_ID: plan.request.project_id,
        USER_ID: plan.request.user_id,
        PROVIDER: plan.provider,
        MODEL: plan.model,
    }
