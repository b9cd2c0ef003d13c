"""Evaluating the code location's sensors as the daemon does, with the build service resource."""

from __future__ import annotations

from dagster import DagsterEvent, DagsterInstance, DagsterRun, build_run_status_sensor_context

from sheen_pipeline.defs.resources import BuildServiceResource
from sheen_pipeline.defs.sensors import failed_run_sensor
from sheen_pipeline.defs.settings import SettingsResource


def resources() -> dict[str, object]:
    """Made when asked, so it reads the environment the test has set: the `settings` resource
    and the build service reading it, as the code location hands them to sensors and assets."""
    settings = SettingsResource()
    return {"settings": settings, "sheen": BuildServiceResource(settings=settings)}


def evaluate_failed_run_sensor(
    instance: DagsterInstance, run: DagsterRun, failure: DagsterEvent
) -> None:
    with build_run_status_sensor_context(
        sensor_name=failed_run_sensor.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure,
        resources=resources(),
    ).for_run_failure() as context:
        failed_run_sensor(context)
