"""Every deployed preview under /p/<build_id>/, its screenshots under /s/<build_id>/, and each
project's promoted build under /prod/<project_id>/ (the local target), all read from the artifact
store, so any `sheen serve` serves any build wherever it was built. Previews are public (they are
meant to be shared, and build ids are unguessable); nothing lists them."""

from __future__ import annotations

import mimetypes

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sheen_pipeline.models import FileArtifact
from sheen_pipeline.store.blobs import ArtifactStoreError
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.files import BuildFiles, Stage

NOT_FOUND = PlainTextResponse("not found", 404)
STORE_AWAY = PlainTextResponse(
    "the artifact store is unavailable; try again shortly", 503, headers={"Retry-After": "10"}
)


class StoredSites:
    """Answers a path of a build's stage from the store: a folder's index.html for a folder,
    a redirect to add the slash a folder needs for its relative links."""

    def __init__(self, files: BuildFiles, deployments: DeploymentStore) -> None:
        self.files = files
        self.deployments = deployments

    def locally_deployed(self, build_id: str) -> bool:
        deployed = self.deployments.get(build_id)
        return deployed is not None and deployed.target == "local"

    def find(self, build_id: str, stage: Stage, path: str) -> FileArtifact | str | None:
        """The file at path, or the URL path to redirect to (a folder without its slash)."""
        if path == "" or path.endswith("/"):
            return self.files.find(build_id, stage, f"{path}index.html")
        found = self.files.find(build_id, stage, path)
        if found is None and self.files.find(build_id, stage, f"{path}/index.html"):
            return f"{path}/"
        return found

    def answer(self, build_id: str, stage: Stage, path: str, prefix: str) -> Response:
        found = self.find(build_id, stage, path)
        if found is None:
            return NOT_FOUND
        if isinstance(found, str):
            return RedirectResponse(f"{prefix}{found}")
        media_type = mimetypes.guess_type(found.path)[0] or "application/octet-stream"
        headers = {"ETag": f'"{found.sha256}"', "Cache-Control": "no-cache"}
        try:
            content = self.files.read(found)
        except ArtifactStoreError:  # S3 away: say so, and when to try again (no details)
            return STORE_AWAY
        return Response(content, media_type=media_type, headers=headers)


def preview_routes(files: BuildFiles, deployments: DeploymentStore) -> list[BaseRoute]:
    sites = StoredSites(files, deployments)

    async def index(_request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sheen</title></head><body>"
            "<h1>sheen preview server</h1><p>Each preview lives at /p/&lt;build_id&gt;/, each "
            "project's production at /prod/&lt;project_id&gt;/.</p></body></html>"
        )

    def preview_of(build_id: str, path: str) -> Response:
        if not sites.locally_deployed(build_id):
            return NOT_FOUND
        return sites.answer(build_id, Stage.DIST, path, f"/p/{build_id}/")

    def production_of(project_id: str, path: str) -> Response:
        """Looked up on every request, so a promotion (or a rollback) takes effect at once."""
        live = deployments.production(project_id)
        if live is None or live.target != "local":
            return PlainTextResponse(f"project {project_id} has no build in production here", 404)
        return sites.answer(live.build_id, Stage.DIST, path, f"/prod/{project_id}/")

    async def preview(request: Request) -> Response:
        params = request.path_params
        return await run_in_threadpool(preview_of, params["build_id"], params["path"])

    async def screenshot(request: Request) -> Response:
        params = request.path_params
        return await run_in_threadpool(
            sites.answer, params["build_id"], Stage.SCREENSHOTS, params["name"], ""
        )

    async def production(request: Request) -> Response:
        params = request.path_params
        return await run_in_threadpool(production_of, params["project_id"], params["path"])

    def add_slash(prefix: str, name: str) -> Route:
        async def redirect(request: Request) -> RedirectResponse:
            return RedirectResponse(f"/{prefix}/{request.path_params[name]}/")

        return Route(f"/{prefix}/{{{name}}}", redirect)

    return [
        Route("/", index),
        add_slash("p", "build_id"),
        Route("/p/{build_id}/{path:path}", preview),
        Route("/s/{build_id}/{name:path}", screenshot),
        add_slash("prod", "project_id"),
        Route("/prod/{project_id}/{path:path}", production),
    ]
