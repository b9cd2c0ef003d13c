"""The Celery app of a worker: `dagster-celery worker start -A sheen_pipeline.celery_worker`.
dagster-celery's own app and tasks (a worker takes a build's steps from the queue and runs them
against the run's Dagster instance), plus /healthz and /metrics served by the worker's main
process on SHEEN_WORKER_METRICS_HOST:SHEEN_WORKER_METRICS_PORT (0: not served)."""

from __future__ import annotations

import threading
from typing import Any

import uvicorn
from celery.signals import worker_ready
from dagster_celery.app import app, execute_job, execute_plan, resume_job

from sheen_pipeline.api.operations import operations_app
from sheen_pipeline.config import Settings

__all__ = ["app", "execute_job", "execute_plan", "resume_job"]


@worker_ready.connect  # type: ignore[untyped-decorator]
def serve_operations(**_signal: Any) -> None:
    settings = Settings.from_env()
    if settings.metrics_port == 0:
        return
    config = uvicorn.Config(
        operations_app(settings),
        host=settings.metrics_host,
        port=settings.metrics_port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="sheen-operations", daemon=True).start()
