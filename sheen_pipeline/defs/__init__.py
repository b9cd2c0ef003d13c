"""Dagster wiring only: the code location entry point is `sheen_pipeline.defs` (repository `sheen`)."""

from sheen_pipeline.defs.repository import sheen

__all__ = ["sheen"]
