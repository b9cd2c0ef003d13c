"""The `sheen` command: run builds and serve previews from a terminal. Each module adds its
commands to the one group, `main`."""

from sheen_pipeline.cli import builds, evals, operations, serving, versions, webhooks
from sheen_pipeline.cli.app import main

__all__ = ["builds", "evals", "main", "operations", "serving", "versions", "webhooks"]
