"""Every deployed preview under /p/<build_id>/, straight from SHEEN_HOME/previews. Previews are
public (they are meant to be shared, and build ids are unguessable); nothing lists them."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles


def preview_routes(previews_dir: Path) -> list[BaseRoute]:
    previews_dir.mkdir(parents=True, exist_ok=True)

    async def index(_request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sheen</title></head><body>"
            "<h1>sheen preview server</h1><p>Each preview lives at /p/&lt;build_id&gt;/.</p>"
            "</body></html>"
        )

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return [
        Route("/", index),
        Route("/healthz", health),
        Mount("/p", StaticFiles(directory=previews_dir, html=True, follow_symlink=False)),
    ]
