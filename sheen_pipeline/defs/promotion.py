"""The promotion job, launchable from the Launchpad: a succeeded build becomes its project's
production, recorded as the asset sheen/<project_id>/production (promoting an older build is
the rollback)."""

from dagster import (
    AssetMaterialization,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from sheen_pipeline.defs.resources import BuildServiceResource, pipeline_resources
from sheen_pipeline.deploy.target import DeployError
from sheen_pipeline.promotion import PromotionRefused, promote
from sheen_pipeline.runs.names import PROMOTE_JOB_NAME


class PromotionConfig(Config):
    build_id: str = Field(description="The succeeded build to put in production.")
    promoted_by: str = Field(default="dagster-ui", description="Who promotes it, for the record.")
    force: bool = Field(
        default=False, description="Promote it even though its browser checks did not run."
    )


@op
def promote_to_production(
    context: OpExecutionContext, config: PromotionConfig, sheen: BuildServiceResource
) -> str:
    try:
        live = promote(sheen.service, config.build_id, config.promoted_by, config.force)
    except (PromotionRefused, DeployError) as refused:  # says what to do: no stack trace
        raise Failure(description=str(refused), allow_retries=False) from None
    context.log_event(
        AssetMaterialization(
            asset_key=["sheen", live.project_id, "production"],
            description=f"Production of {live.project_id}: build {live.build_id}",
            metadata={
                "build_id": live.build_id,
                "production_url": MetadataValue.url(live.url),
                "target": live.target,
                "promoted_by": live.promoted_by,
                "promoted_at": MetadataValue.timestamp(live.promoted_at),
            },
        )
    )
    return live.url


@job(
    name=PROMOTE_JOB_NAME,
    executor_def=in_process_executor,
    resource_defs=pipeline_resources(),
    description="Make a succeeded build its project's production version (or roll back to it).",
)
def promote_build() -> None:
    promote_to_production()
