"""The one resource ops use: the domain pipeline, configured from SHEEN_* environment variables."""

from __future__ import annotations

from dagster import ConfigurableResource

from sheen_pipeline.pipeline import BuildPipeline


class SheenResource(ConfigurableResource):  # type: ignore[type-arg]
    """Settings come from the environment so the UI, daemon and CLI all agree on them."""

    def pipeline(self) -> BuildPipeline:
        return BuildPipeline.from_env()
