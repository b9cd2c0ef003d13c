"""A build whose process died ends failed, and so does its Dagster run, so the UI and the
app database agree (the default run launcher cannot tell Dagster's run monitoring that a run
worker died; the build's own heartbeat can)."""

from __future__ import annotations

from dagster import DagsterInstance

from sheen_pipeline.liveness import Stalled, end_stalled
from sheen_pipeline.runs.launch import fail_for_good
from sheen_pipeline.service import BuildService


def end_stalled_builds(
    service: BuildService, instance: DagsterInstance, build_id: str | None = None
) -> list[Stalled]:
    ended = end_stalled(service, build_id)
    for stalled in ended:
        run = instance.get_run_by_id(stalled.run_id) if stalled.run_id else None
        if run is not None and not run.is_finished:
            fail_for_good(instance, run, stalled.reason)
    return ended
