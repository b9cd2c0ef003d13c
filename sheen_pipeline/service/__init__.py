"""The build service: each step of a build (plan, task, site build, deploy, checks, failure) over
the app store, the event log, the result cache and the provider. Plain Python: Dagster ops, the
CLI and the API call it. One module per step (planning, tasks, site, accounting) over the parts
they share (parts.py); BuildService is the one object that holds them all."""

from __future__ import annotations

from sheen_pipeline.config import Settings
from sheen_pipeline.service.parts import BuildTimeLimit
from sheen_pipeline.service.planning import Planning
from sheen_pipeline.service.site import BuildSummary, Deployment, Site
from sheen_pipeline.service.tasks import Tasks, is_transient

__all__ = ["BuildService", "BuildSummary", "BuildTimeLimit", "Deployment", "is_transient"]


class BuildService(Planning, Tasks, Site):
    """Runs the steps of builds and reports each as a stored build event. Made once per run by
    the Dagster resource (or by the CLI and the API), from settings."""

    @classmethod
    def from_env(cls) -> BuildService:
        return cls(Settings.from_env())
