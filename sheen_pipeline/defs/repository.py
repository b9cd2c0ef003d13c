"""The code location: the static definitions (plan_build, housekeeping, the cost dashboard,
sensors, schedules, the resource) plus one lazily built job per stored plan."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet

from dagster import (
    AssetCheckKey,
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    DagsterInvariantViolationError,
    Definitions,
    JobDefinition,
    RepositoryData,
    RepositoryDefinition,
    ResourceDefinition,
    ScheduleDefinition,
    SensorDefinition,
    repository,
)

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.build_job import make_build_job
from sheen_pipeline.defs.costs import daily_costs, daily_costs_job, hourly_cost_refresh
from sheen_pipeline.defs.evals import eval_assets, eval_suite
from sheen_pipeline.defs.maintenance import evict_result_cache, hourly_result_cache_eviction
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.previews import preview_checks, project_assets
from sheen_pipeline.defs.promotion import promote_build
from sheen_pipeline.defs.resources import pipeline_resources
from sheen_pipeline.defs.sensors import (
    build_requests_sensor,
    canceled_run_sensor,
    failed_run_sensor,
    plan_approval_expiry_sensor,
    stalled_build_sensor,
    webhook_delivery_sensor,
)
from sheen_pipeline.defs.settings import FIELD_ENV_VARS
from sheen_pipeline.logs import get_logger
from sheen_pipeline.models import Plan
from sheen_pipeline.runs.names import build_id_from_job_name
from sheen_pipeline.runs.tags import REPOSITORY_NAME
from sheen_pipeline.store.builds import BuildStore
from sheen_pipeline.store.deployments import DeploymentStore

logger = get_logger(__name__)


def static_definitions(project_ids: Sequence[str]) -> RepositoryDefinition:
    """Everything but the per-build jobs, with each known project's preview and production
    assets and the preview's checks."""
    return Definitions(
        assets=[daily_costs, *project_assets(project_ids), *eval_assets()],
        asset_checks=preview_checks(project_ids),
        jobs=[plan_build, evict_result_cache, daily_costs_job, promote_build, eval_suite],
        schedules=[hourly_result_cache_eviction, hourly_cost_refresh],
        sensors=[
            build_requests_sensor,
            canceled_run_sensor,
            failed_run_sensor,
            plan_approval_expiry_sensor,
            stalled_build_sensor,
            webhook_delivery_sensor,
        ],
        resources=pipeline_resources(),
    ).get_repository_def()


class SheenRepositoryData(RepositoryData):
    """Per-build jobs are read from the plan store when asked for, and cached (plans never change)."""

    def __init__(self, read_settings: Callable[[], Settings]) -> None:
        """`read_settings`: the code location's settings, read each time they are needed (the
        process may be asked for jobs of another instance later, as tests do); jobs get them
        from here, runs from their `settings` resource."""
        self._read_settings = read_settings
        settings = read_settings()
        projects = DeploymentStore(settings.database_url).projects(settings.ui_job_window)
        self._definitions = static_definitions(projects)
        self._static: dict[str, JobDefinition] = {
            job.name: job for job in self._definitions.get_all_jobs()
        }
        self._built: dict[str, JobDefinition] = {}

    def _store(self) -> BuildStore:
        return BuildStore(self._read_settings().database_url)

    def _job_for(self, plan: Plan) -> JobDefinition:
        job = self._built.get(plan.build_id)
        if job is None:
            job = self._built[plan.build_id] = make_build_job(plan, self._read_settings())
        return job

    def get_top_level_resources(self) -> Mapping[str, ResourceDefinition]:
        return self._definitions.get_top_level_resources()

    def get_env_vars_by_top_level_resource(self) -> Mapping[str, AbstractSet[str]]:
        return {"settings": set(FIELD_ENV_VARS.values())}

    def get_all_sensors(self) -> Sequence[SensorDefinition]:
        return self._definitions.sensor_defs

    def get_all_schedules(self) -> Sequence[ScheduleDefinition]:
        return self._definitions.schedule_defs

    def get_assets_defs_by_key(self) -> Mapping[AssetKey, AssetsDefinition]:
        return self._definitions.assets_defs_by_key

    def get_asset_checks_defs_by_key(self) -> Mapping[AssetCheckKey, AssetChecksDefinition]:
        return self._definitions.asset_checks_defs_by_key

    def _job_or_none(self, build_id: str, plan_json: str) -> JobDefinition | None:
        """The plan's job; a plan that cannot become one is skipped and reported, so one bad
        plan never takes the code location (and every sensor) down."""
        try:
            return self._job_for(Plan.model_validate_json(plan_json))
        except Exception as error:
            logger.error("plan_skipped", build_id=build_id, reason=str(error))
            return None

    def _recent_build_jobs(self) -> Iterator[JobDefinition]:
        """Only the newest SHEEN_UI_JOB_WINDOW builds' jobs are listed, so loading the code
        location does not grow with every build ever made; `get_job` still finds any build."""
        window = self._read_settings().ui_job_window
        for build_id, plan_json in self._store().recent_plans(window):
            if (job := self._job_or_none(build_id, plan_json)) is not None:
                yield job

    def get_all_jobs(self) -> Sequence[JobDefinition]:
        return [*self._static.values(), *self._recent_build_jobs()]

    def get_job_names(self) -> Sequence[str]:
        return [job.name for job in self.get_all_jobs()]

    def has_job(self, job_name: str) -> bool:
        try:
            self.get_job(job_name)
        except DagsterInvariantViolationError:
            return False
        return True

    def get_job(self, job_name: str) -> JobDefinition:
        """Build only the asked-for job, so a run worker never loads every plan."""
        if job_name in self._static:
            return self._static[job_name]
        build_id = build_id_from_job_name(job_name)
        plan_json = None if build_id is None else self._store().get_plan_json(build_id)
        if build_id and plan_json and (job := self._job_or_none(build_id, plan_json)):
            return job
        raise DagsterInvariantViolationError(f"Could not find job {job_name} in repository")


@repository(name=REPOSITORY_NAME)  # type: ignore[arg-type]
def sheen() -> SheenRepositoryData:
    return SheenRepositoryData(Settings.from_env)
