"""Every deployed preview under /p/<build_id>/, straight from SHEEN_HOME/previews, its
screenshots under /s/<build_id>/, and each project's promoted build under /prod/<project_id>/
(the local target). Previews are public
(they are meant to be shared, and build ids are unguessable); nothing lists them."""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from sheen_pipeline.store.deployments import DeploymentStore


def preview_routes(
    previews_dir: Path, screenshots_dir: Path, deployments: DeploymentStore
) -> list[BaseRoute]:
    previews_dir.mkdir(parents=True, exist_ok=True)
    screenshots_dir.mkdir(parents=True, exist_ok=True)
    previews = StaticFiles(directory=previews_dir, html=True, follow_symlink=False)

    async def index(_request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sheen</title></head><body>"
            "<h1>sheen preview server</h1><p>Each preview lives at /p/&lt;build_id&gt;/, each "
            "project's production at /prod/&lt;project_id&gt;/.</p></body></html>"
        )

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def production(request: Request) -> Response:
        """The promoted build's preview files, looked up on every request, so a promotion
        (or a rollback) takes effect at once."""
        project_id = request.path_params["project_id"]
        live = await run_in_threadpool(deployments.production, project_id)
        if live is None or live.target != "local":
            return PlainTextResponse(f"project {project_id} has no build in production here", 404)
        return await previews.get_response(
            f"{live.build_id}/{request.path_params['path']}", request.scope
        )

    async def add_slash(request: Request) -> RedirectResponse:
        return RedirectResponse(f"/prod/{request.path_params['project_id']}/")

    return [
        Route("/", index),
        Route("/healthz", health),
        Route("/prod/{project_id}", add_slash),
        Route("/prod/{project_id}/{path:path}", production),
        Mount("/p", previews),
        Mount("/s", StaticFiles(directory=screenshots_dir, follow_symlink=False)),
    ]
