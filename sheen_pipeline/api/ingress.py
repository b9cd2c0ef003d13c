"""POST /api/builds: a signed, validated, rate-limited way for the main app to ask for a build."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from sheen_pipeline.api.auth import read_token
from sheen_pipeline.budgets import BudgetBook
from sheen_pipeline.config import Settings
from sheen_pipeline.events.signing import SignatureError, verify_webhook
from sheen_pipeline.logs import get_logger
from sheen_pipeline.models import BuildRequest, InvalidRequest, new_build_id, parse_build_request
from sheen_pipeline.providers import select_provider
from sheen_pipeline.store.builds import BuildStore
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.rate import take
from sheen_pipeline.store.requests import RequestRecord, RequestStore, new_request_id
from sheen_pipeline.store.versions import VersionStore
from sheen_pipeline.versions.resolve import resolve_base

log = get_logger(__name__)


class TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int, deadline_s: float) -> bytes:
    """The whole body within deadline_s (TimeoutError), at most limit bytes (TooLarge)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async with asyncio.timeout(deadline_s):
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise TooLarge
    return bytes(body)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def make_ingress(settings: Settings) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Valid requests become rows of build_requests; the build_requests_sensor starts them."""
    url = settings.database_url
    requests = RequestStore(url)
    engine = engine_for(url)
    budgets = BudgetBook(engine, settings.budgets)
    provider = select_provider(settings)
    builds, versions, deployments = BuildStore(url), VersionStore(url), DeploymentStore(url)

    def accept(build_request: BuildRequest) -> BuildRequest:
        """A change's base resolved now (refused when it cannot be changed)."""
        return resolve_base(build_request, builds, versions, deployments)

    async def create_build(request: Request) -> JSONResponse:
        if not settings.ingress_secret:
            return _error(503, "ingress is disabled: set SHEEN_INGRESS_SECRET")
        try:
            body = await _read_body(
                request, settings.ingress_max_body_bytes, settings.ingress_body_timeout_s
            )
        except TooLarge:
            return _error(413, f"body over {settings.ingress_max_body_bytes} bytes")
        except TimeoutError:
            limit_s = settings.ingress_body_timeout_s
            return _error(408, f"body not received within {limit_s:g} s")
        except ClientDisconnect:
            log.info("ingress_client_disconnected", path=request.url.path)
            return _error(400, "the client hung up before sending the whole body")
        try:
            message_id = verify_webhook(body, dict(request.headers), settings.ingress_secret)
        except SignatureError as error:
            return _error(401, f"unauthorized: {error}")
        first = await run_in_threadpool(requests.with_idempotency_key, message_id)
        if first is not None:  # a repeat (a retry of the same webhook-id): the first answer
            return _accepted(first, settings.ingress_secret)
        try:
            fields = json.loads(body)
        except ValueError:
            return _error(422, "body: not valid JSON")
        if not isinstance(fields, dict):
            return _error(422, "body: must be a JSON object")
        try:
            build_request = await run_in_threadpool(accept, parse_build_request(**fields))
        except InvalidRequest as error:
            return _error(422, str(error))
        owner = (build_request.project_id, build_request.user_id)
        planning = provider.estimate_plan_usd(build_request)  # the least a build must afford
        over = await run_in_threadpool(budgets.over, *owner, planning)
        if over is not None:
            return JSONResponse({"error": str(over), **over.figures()}, status_code=402)
        name = f"ingress:{build_request.user_id}"
        if not await run_in_threadpool(take, engine, name, settings.ingress_rate_per_min, 60.0):
            return _error(
                429, "too many requests from this user; try again later", **{"Retry-After": "60"}
            )
        record = await run_in_threadpool(
            requests.add, build_request, new_request_id(), new_build_id(), message_id
        )
        return _accepted(record, settings.ingress_secret)

    return create_build


def _accepted(record: RequestRecord, ingress_secret: str) -> JSONResponse:
    """The answer to an accepted request, with the token that reads this build (and only it)."""
    base = f"/api/builds/{record.build_id}"
    return JSONResponse(
        {
            "request_id": record.request_id,
            "build_id": record.build_id,
            "status": "pending",
            "status_url": base,
            "events_url": f"{base}/events",
            "stream_url": f"{base}/stream",
            "read_token": read_token(ingress_secret, record.build_id),
        },
        status_code=202,
    )
