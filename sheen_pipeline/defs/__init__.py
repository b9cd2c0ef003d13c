"""Dagster wiring only: the code location entry point is `sheen_pipeline.defs` (repository `sheen`)."""

import sheen_pipeline.sqlite_commits  # noqa: F401  (every process that runs steps loads this)
from sheen_pipeline.defs import claim_wait
from sheen_pipeline.defs.repository import sheen

claim_wait.install()  # before any run of this process waits on a pool

__all__ = ["sheen"]
