"""Dagster wiring only: the code location entry point is `sheen_pipeline.defs` (repository `sheen`)."""

import gc

import sheen_pipeline.sqlite_commits  # noqa: F401  (every process that runs steps loads this)
from sheen_pipeline.defs import claim_wait
from sheen_pipeline.defs.repository import sheen

claim_wait.install()  # before any run of this process waits on a pool

# What importing Dagster and the pipeline made lives as long as the process: out of the
# collector's way, a full collection no longer walks it (a `sheen build` spent 0.2 CPU-s on
# four of them, and more at exit), nor does a forked child's.
gc.freeze()

__all__ = ["sheen"]
