"""Run tag keys and the per-build job's name, shared by the ops, the repository and the CLI."""

from __future__ import annotations

from sheen_pipeline.models import Plan

BUILD_ID = "sheen/build_id"
PROJECT_ID = "sheen/project_id"
USER_ID = "sheen/user_id"
PROVIDER = "sheen/provider"
MODEL = "sheen/model"
PLAN_RUN_ID = "sheen/plan_run_id"
REQUEST_ID = "sheen/request_id"

BUILD_JOB_PREFIX = "build_"
LOCATION_NAME = "sheen_pipeline"
REPOSITORY_NAME = "sheen"
CODE_MODULE = "sheen_pipeline.defs"


def build_job_name(build_id: str) -> str:
    return f"{BUILD_JOB_PREFIX}{build_id}"


def build_tags(plan: Plan) -> dict[str, str]:
    """Deterministic tags of a per-build job: the same plan always yields the same job."""
    return {
        BUILD_ID: plan.build_id,
        PROJECT_ID: plan.request.project_id,
        USER_ID: plan.request.user_id,
        PROVIDER: plan.provider,
        MODEL: plan.model,
    }
