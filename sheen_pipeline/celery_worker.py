"""The Celery app of a worker: `dagster-celery worker start -A sheen_pipeline.celery_worker`.
dagster-celery's own app and tasks (a worker takes a build's steps from the queue and runs them
against the run's Dagster instance), plus /healthz and /metrics served by the worker's main
process on SHEEN_WORKER_METRICS_HOST:SHEEN_WORKER_METRICS_PORT (0: not served). Each pool process
imports the code location as it starts, so its first step (also one redelivered after a kill)
does not wait for Dagster and the pipeline to load."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import uvicorn
from amqp.exceptions import AccessRefused, NotAllowed  # type: ignore[import-untyped]
from celery.signals import worker_init, worker_process_init, worker_ready
from dagster_celery.app import app, execute_job, execute_plan, resume_job

from sheen_pipeline.api.operations import operations_app
from sheen_pipeline.config import Settings

__all__ = ["app", "execute_job", "execute_plan", "resume_job"]


@worker_init.connect  # type: ignore[untyped-decorator]
def refuse_a_broker_that_refuses(**_signal: Any) -> None:
    """A broker that refuses this worker for good (a wrong virtual host, user or password) ends
    it at once, non-zero, saying why; without this the consumer retries, gives up and the process
    sits forever serving nothing. A broker not up yet is still waited for."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except (AccessRefused, NotAllowed) as refused:
        reason = f"the Celery broker (SHEEN_CELERY_BROKER) refused this worker: {refused}"
        raise SystemExit(reason) from None
    except Exception:  # not reachable yet: the consumer keeps trying, as configured
        return


@worker_process_init.connect  # type: ignore[untyped-decorator]
def start_a_pool_process(**_signal: Any) -> None:
    """In each pool process, the code location imported before the first step. Imported here
    rather than before the fork, which would share the connections it opens (those the main
    process's /healthz opened are dropped at the fork, by `store.engines`)."""
    importlib.import_module("sheen_pipeline.defs")


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
