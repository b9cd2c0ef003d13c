"""The code location: `plan_build` plus one lazily built job per stored plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from dagster import (
    DagsterInvariantViolationError,
    JobDefinition,
    RepositoryData,
    ResourceDefinition,
    ScheduleDefinition,
    SensorDefinition,
    repository,
)

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.build_job import make_build_job
from sheen_pipeline.defs.maintenance import evict_result_cache, hourly_result_cache_eviction
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.sensors import (
    build_requests_sensor,
    plan_approval_expiry_sensor,
    plan_run_failure_sensor,
)
from sheen_pipeline.defs.tags import BUILD_JOB_PREFIX, REPOSITORY_NAME
from sheen_pipeline.models import Plan
from sheen_pipeline.store.builds import BuildStore

SENSORS: list[SensorDefinition] = [
    build_requests_sensor,
    plan_run_failure_sensor,
    plan_approval_expiry_sensor,
]


class SheenRepositoryData(RepositoryData):
    """Per-build jobs are read from the plan store when asked for, and cached (plans never change)."""

    def __init__(self) -> None:
        self._static: dict[str, JobDefinition] = {
            plan_build.name: plan_build,
            evict_result_cache.name: evict_result_cache,
        }
        self._built: dict[str, JobDefinition] = {}

    def _store(self) -> BuildStore:
        return BuildStore(Settings.from_env().database_url)

    def _job_for(self, plan: Plan) -> JobDefinition:
        job = self._built.get(plan.build_id)
        if job is None:
            job = self._built[plan.build_id] = make_build_job(plan)
        return job

    def get_top_level_resources(self) -> Mapping[str, ResourceDefinition]:
        return {}

    def get_env_vars_by_top_level_resource(self) -> Mapping[str, AbstractSet[str]]:
        return {}

    def get_all_sensors(self) -> Sequence[SensorDefinition]:
        return SENSORS

    def get_all_schedules(self) -> Sequence[ScheduleDefinition]:
        return [hourly_result_cache_eviction]

    def get_all_jobs(self) -> Sequence[JobDefinition]:
        return [*self._static.values(), *(self._job_for(p) for p in self._store().list_plans())]

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
        if job_name.startswith(BUILD_JOB_PREFIX):
            plan = self._store().get_plan(job_name.removeprefix(BUILD_JOB_PREFIX))
            if plan is not None:
                return self._job_for(plan)
        raise DagsterInvariantViolationError(f"Could not find job {job_name} in repository")


@repository(name=REPOSITORY_NAME)  # type: ignore[arg-type]
def sheen() -> SheenRepositoryData:
    return SheenRepositoryData()
