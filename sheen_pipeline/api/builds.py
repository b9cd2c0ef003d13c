"""Reading builds over HTTP: status, events after a cursor, and a live Server-Sent Events stream;
each needs a credential (see auth)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sheen_pipeline.api.auth import ReadAccess, unauthorized
from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.types import TERMINAL_TYPES, BuildEvent
from sheen_pipeline.store.builds import BuildStore, UnknownBuild
from sheen_pipeline.store.requests import RequestStore

POLL_S = 0.25
HEARTBEAT_S = 15.0
MAX_STREAM_S = 3600.0
MAX_PAGE = 500


class BuildsApi:
    def __init__(
        self, builds: BuildStore, requests: RequestStore, events: EventLog, access: ReadAccess
    ) -> None:
        self.builds = builds
        self.requests = requests
        self.events = events
        self.access = access

    async def _readable(self, request: Request) -> tuple[str, Response | None]:
        """The build id, and the answer to give instead when the caller may not read it or it
        does not exist (401 before 404, so ids cannot be probed)."""
        build_id: str = request.path_params["build_id"]
        if not self.access.allows(request, build_id):
            return build_id, unauthorized()
        if await run_in_threadpool(self._status, build_id) is None:
            return build_id, JSONResponse({"error": f"no build {build_id}"}, status_code=404)
        return build_id, None

    def _status(self, build_id: str) -> dict[str, Any] | None:
        try:
            record = self.builds.get_build(build_id)
        except UnknownBuild:
            pending = self.requests.find(build_id)
            if pending is None:
                return None
            return {
                "build_id": build_id,
                "request_id": pending.request_id,
                "status": pending.status,
                "error": pending.error,
                "preview_url": None,
                "usage": None,
            }
        return {
            "build_id": build_id,
            "status": record.status.value,
            "error": record.error,
            "preview_url": record.preview_url,
            "usage": record.usage.model_dump(mode="json"),
            "created_at": record.created_at.isoformat(),
        }

    async def status(self, request: Request) -> Response:
        build_id, refusal = await self._readable(request)
        if refusal is not None:
            return refusal
        return JSONResponse(await run_in_threadpool(self._status, build_id))

    async def events_after(self, request: Request) -> Response:
        build_id, refusal = await self._readable(request)
        if refusal is not None:
            return refusal
        try:
            cursor = int(request.query_params.get("since", "0"))
            limit = min(int(request.query_params.get("limit", str(MAX_PAGE))), MAX_PAGE)
        except ValueError:
            return JSONResponse({"error": "since and limit must be whole numbers"}, status_code=422)
        events = await run_in_threadpool(self.events.after, build_id, cursor, limit)
        return JSONResponse(
            {
                "events": [e.payload() for e in events],
                "next_cursor": events[-1].seq if events else cursor,
            }
        )

    async def stream(self, request: Request) -> Response:
        build_id, refusal = await self._readable(request)
        if refusal is not None:
            return refusal
        resume = request.headers.get("last-event-id") or request.query_params.get("since") or "0"
        if not resume.isdigit():
            return JSONResponse({"error": "Last-Event-ID must be an event cursor"}, status_code=422)
        return StreamingResponse(
            self._sse(request, build_id, int(resume)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(self, request: Request, build_id: str, cursor: int) -> AsyncIterator[str]:
        started = last_sent = time.monotonic()
        yield "retry: 1000\n\n"
        last = await run_in_threadpool(self.events.last, build_id)
        if last is not None and last.type in TERMINAL_TYPES and last.seq <= cursor:
            return  # resumed after the build ended: nothing more will come
        while time.monotonic() - started < MAX_STREAM_S:
            if await request.is_disconnected():
                return
            events: list[BuildEvent] = await run_in_threadpool(self.events.after, build_id, cursor)
            for event in events:
                cursor = event.seq
                yield f"id: {event.seq}\nevent: {event.type.value}\ndata: {json.dumps(event.payload())}\n\n"
                last_sent = time.monotonic()
                if event.type in TERMINAL_TYPES:
                    return
            if time.monotonic() - last_sent > HEARTBEAT_S:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(POLL_S)
