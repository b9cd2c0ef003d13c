"""For operators: /healthz (200 when the database, the artifact store and the broker answer,
503 naming what does not) and /metrics in Prometheus's text format, on `sheen serve` and on each
Celery worker."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sheen_pipeline.config import Settings
from sheen_pipeline.health import probe_health
from sheen_pipeline.metrics import StoreCollector


def operations_routes(settings: Settings) -> list[BaseRoute]:
    registry = CollectorRegistry()
    registry.register(StoreCollector(settings.database_url))
    ProcessCollector(registry=registry)  # this process's CPU and memory
    PlatformCollector(registry=registry)

    async def healthz(_request: Request) -> JSONResponse:
        probes = await run_in_threadpool(probe_health, settings)
        healthy = all(probe.ok for probe in probes)
        body = {
            "status": "ok" if healthy else "failing",
            "checks": {p.name: {"ok": p.ok, "detail": p.detail} for p in probes},
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def metrics(_request: Request) -> Response:
        text = await run_in_threadpool(generate_latest, registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/metrics", metrics)]


def operations_app(settings: Settings) -> Starlette:
    """The two routes alone, for a worker."""
    return Starlette(routes=operations_routes(settings))
