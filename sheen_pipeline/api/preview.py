"""Every deployed preview under /p/<build_id>/, straight from SHEEN_HOME/previews."""

from __future__ import annotations

from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles


def preview_routes(previews_dir: Path) -> list[BaseRoute]:
    previews_dir.mkdir(parents=True, exist_ok=True)

    async def index(_request: Request) -> HTMLResponse:
        builds = sorted(
            (p for p in previews_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        items = "".join(
            f'<li><a href="/p/{escape(p.name)}/">{escape(p.name)}</a></li>' for p in builds
        )
        return HTMLResponse(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sheen previews</title></head>"
            f"<body><h1>Previews</h1><ul>{items or '<li>No previews yet.</li>'}</ul></body></html>"
        )

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return [
        Route("/", index),
        Route("/healthz", health),
        Mount("/p", StaticFiles(directory=previews_dir, html=True, follow_symlink=False)),
    ]
