"""The HTTP server of `sheen serve`: previews under /p/, the build API under /api/."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from sheen_pipeline.api.auth import ReadAccess
from sheen_pipeline.api.builds import BuildsApi
from sheen_pipeline.api.ingress import make_ingress
from sheen_pipeline.api.operations import operations_routes
from sheen_pipeline.api.preview import preview_routes
from sheen_pipeline.api.versions import VersionsApi
from sheen_pipeline.config import Settings
from sheen_pipeline.events.runtime import start_deliverer, stored_events
from sheen_pipeline.logs import configure_logging
from sheen_pipeline.store.builds import BuildStore
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.files import BuildFiles
from sheen_pipeline.store.requests import RequestStore
from sheen_pipeline.store.versions import VersionStore


def create_app(settings: Settings) -> Starlette:
    configure_logging(settings.secrets)
    url = settings.database_url
    access = ReadAccess(settings.api_token, settings.ingress_secret)
    files = BuildFiles.open(url, settings.artifact_store)
    api = BuildsApi(BuildStore(url), RequestStore(url), stored_events(settings), access)
    versions = VersionsApi(BuildStore(url), VersionStore(url), files, DeploymentStore(url), access)
    routes = [
        Route("/api/builds", make_ingress(settings), methods=["POST"]),
        Route("/api/builds/{build_id}", api.status),
        Route("/api/builds/{build_id}/events", api.events_after),
        Route("/api/builds/{build_id}/stream", api.stream),
        Route("/api/builds/{build_id}/diff", versions.diff),
        Route("/api/projects/{project_id}/versions", versions.project),
        *preview_routes(files, DeploymentStore(url)),
        *operations_routes(settings),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        start_deliverer(settings, stop)
        try:
            yield
        finally:
            stop.set()

    return Starlette(routes=routes, lifespan=lifespan)
