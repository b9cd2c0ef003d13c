"""A local server speaking the documented wire format of Cloudflare's Workers API for static
assets: the `{success, errors, messages, result}` envelope, bearer tokens (401 for a wrong one,
403 for one without the permission), upload sessions with buckets of missing hashes and JWTs,
multipart asset and version uploads (each asset a file part whose type is what is served),
versions and deployments. Faults can be injected per path fragment, optionally after a method
(`"POST /subdomain"`); `on_deploy` runs when a deployment has switched, before it answers."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.server import serving

ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-test-token-0123456789abcdef"
SUBDOMAIN = "sheen-test"
BUCKET_SIZE = 2  # small, so that an upload takes several buckets
PREFIX = "/client/v4/accounts/{account}/workers"


@dataclass
class Version:
    id: str
    number: int
    manifest: dict[str, str]  # path -> hash


@dataclass
class Script:
    versions: list[Version] = field(default_factory=list)
    live: str | None = None  # the version of the newest 100 % deployment
    assets: dict[str, bytes] = field(default_factory=dict)  # hash -> content
    types: dict[str, str] = field(default_factory=dict)  # hash -> the type it is served as
    enabled: bool = False
    previews_enabled: bool = False


@dataclass
class Session:
    script: str
    manifest: dict[str, str]
    missing: set[str]


class FakeCloudflare:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.sessions: dict[str, Session] = {}  # upload JWT -> session
        self.completions: dict[str, Session] = {}  # completion JWT -> session
        self.uploaded: list[str] = []  # hashes, in upload order
        self.requests: list[tuple[str, str, str]] = []  # method, path, authorization
        self.faults: dict[str, list[int]] = {}  # path fragment -> statuses to answer next
        self.read_only = False  # the token authenticates, but may not edit Workers
        self.on_deploy: Callable[[str], None] = lambda _version_id: None

    def live_manifest(self, script: str) -> dict[str, str] | None:
        found = self.scripts.get(script)
        if found is None or found.live is None:
            return None
        return next(v.manifest for v in found.versions if v.id == found.live)

    def live_content(self, script: str, path: str) -> bytes:
        manifest = self.live_manifest(script)
        assert manifest is not None
        return self.scripts[script].assets[manifest[path]]

    def app(self) -> Starlette:
        base = PREFIX.format(account=ACCOUNT)
        routes = [
            Route(f"{base}/subdomain", self.account_subdomain, methods=["GET"]),
            Route(f"{base}/scripts/{{name}}/subdomain", self.subdomain, methods=["GET", "POST"]),
            Route(f"{base}/scripts/{{name}}/assets-upload-session", self.session, methods=["POST"]),
            Route(f"{base}/assets/upload", self.upload, methods=["POST"]),
            Route(f"{base}/scripts/{{name}}", self.put_script, methods=["PUT"]),
            Route(f"{base}/scripts/{{name}}/versions", self.new_version, methods=["POST"]),
            Route(f"{base}/scripts/{{name}}/deployments", self.deploy, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(_Gate, fake=self)
        return app

    # -- endpoints -----------------------------------------------------------------------

    async def account_subdomain(self, _request: Request) -> JSONResponse:
        return ok({"subdomain": SUBDOMAIN})

    async def subdomain(self, request: Request) -> JSONResponse:
        script = self.scripts.get(request.path_params["name"])
        if script is None:
            return fail(404, 10007, "This Worker does not exist on your account.")
        if request.method == "POST":
            body = await request.json()
            script.enabled, script.previews_enabled = body["enabled"], body["previews_enabled"]
        return ok({"enabled": script.enabled, "previews_enabled": script.previews_enabled})

    async def session(self, request: Request) -> JSONResponse:
        manifest = {
            path: entry["hash"] for path, entry in (await request.json())["manifest"].items()
        }
        if any(
            len(h) != 32 or not all(c in "0123456789abcdef" for c in h) for h in manifest.values()
        ):
            return fail(400, 10021, "manifest hashes must be 32 hex characters")
        name = request.path_params["name"]
        known = self.scripts.get(name, Script()).assets
        missing = sorted({h for h in manifest.values() if h not in known})
        session = Session(name, manifest, set(missing))
        if not missing:
            jwt = _jwt()
            self.completions[jwt] = session
            return ok({"jwt": jwt, "buckets": []})
        jwt = _jwt()
        self.sessions[jwt] = session
        buckets = [missing[i : i + BUCKET_SIZE] for i in range(0, len(missing), BUCKET_SIZE)]
        return ok({"jwt": jwt, "buckets": buckets})

    async def upload(self, request: Request) -> JSONResponse:
        if request.query_params.get("base64") != "true":
            return fail(400, 10022, "base64=true is required")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        session = self.sessions.get(token)
        if session is None:
            return fail(401, 10000, "Authentication error: not an upload session token")
        form = await request.form()
        for asset_hash, value in form.multi_items():
            if asset_hash not in session.missing:
                return fail(400, 10023, f"{asset_hash} was not asked for")
            if not isinstance(value, UploadFile) or value.filename != asset_hash:
                return fail(
                    400, 10027, f"{asset_hash}: each asset is a file part named by its hash"
                )
            content = base64.b64decode(await value.read(), validate=True)
            script = self.scripts.setdefault(session.script, Script())
            script.assets[asset_hash] = content
            script.types[asset_hash] = value.content_type or "application/octet-stream"
            session.missing.discard(asset_hash)
            self.uploaded.append(asset_hash)
        if session.missing:
            return ok({"jwt": None}, status=202)
        jwt = _jwt()
        self.completions[jwt] = session
        return ok({"jwt": jwt}, status=201)

    async def put_script(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        version = await self._version_from(request, name)
        if isinstance(version, JSONResponse):
            return version
        script = self.scripts.setdefault(name, Script())
        script.versions.append(version)
        script.live = version.id  # uploading a script deploys it
        return ok({"id": name, "startup_time_ms": 1})

    async def new_version(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if not self.scripts.get(name, Script()).versions:
            return fail(404, 10007, "This Worker does not exist on your account.")
        version = await self._version_from(request, name)
        if isinstance(version, JSONResponse):
            return version
        self.scripts[name].versions.append(version)
        return ok({"id": version.id, "number": version.number, "resources": {}})

    async def deploy(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = await request.json()
        script = self.scripts.get(name)
        wanted = body.get("versions") or []
        if script is None:
            return fail(404, 10007, "This Worker does not exist on your account.")
        if sum(v["percentage"] for v in wanted) != 100:
            return fail(400, 10024, "percentages must total 100")
        if {v["version_id"] for v in wanted} - {v.id for v in script.versions}:
            return fail(404, 10025, "no such version")
        script.live = wanted[0]["version_id"]
        await run_in_threadpool(self.on_deploy, script.live)  # may wait: other requests go on
        created = datetime.now(UTC).isoformat()
        return ok(
            {
                "id": str(uuid.uuid4()),
                "created_on": created,
                "source": "api",
                "strategy": "percentage",
                "versions": wanted,
            }
        )

    async def _version_from(self, request: Request, name: str) -> Version | JSONResponse:
        form = await request.form()
        metadata = json.loads(str(form["metadata"]))
        modules = [value for key, value in form.multi_items() if key == "files"]
        if not any(getattr(m, "filename", None) == metadata.get("main_module") for m in modules):
            return fail(400, 10021, "the main_module was not uploaded")
        session = self.completions.get(metadata.get("assets", {}).get("jwt", ""))
        if session is None or session.script != name:
            return fail(400, 10026, "assets: not a completion token of this Worker")
        versions = self.scripts.get(name, Script()).versions
        return Version(str(uuid.uuid4()), len(versions) + 1, session.manifest)


class _Gate:
    """Authentication and injected faults, before any endpoint."""

    def __init__(self, app: Any, fake: FakeCloudflare) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path, method = scope["path"], scope["method"]
        authorization = request.headers.get("authorization", "")
        self.fake.requests.append((method, path, authorization))
        answer = self._refusal(path, method, authorization)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)

    def _refusal(self, path: str, method: str, authorization: str) -> JSONResponse | None:
        for where, statuses in self.fake.faults.items():
            wanted, _, fragment = where.rpartition(" ")
            if fragment in path and wanted in ("", method) and statuses:
                return fail(statuses.pop(0), 10013, "An unknown error has occurred")
        if path.endswith("/assets/upload"):
            return None  # authenticated by its upload session JWT
        if authorization != f"Bearer {TOKEN}":
            return fail(401, 10000, "Authentication error")
        if self.fake.read_only and method != "GET":
            return fail(403, 10000, "Authentication error")
        return None


def ok(result: object, status: int = 200) -> JSONResponse:
    return JSONResponse(
        {"success": True, "errors": [], "messages": [], "result": result}, status_code=status
    )


def fail(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "success": False,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": None,
        },
        status_code=status,
    )


def _jwt() -> str:
    return "eyJ" + secrets.token_urlsafe(24)


@contextmanager
def fake_cloudflare() -> Iterator[tuple[FakeCloudflare, str]]:
    """The fake, and the base URL to hand the SDK (SHEEN_CLOUDFLARE_BASE_URL)."""
    fake = FakeCloudflare()
    with serving(fake.app()) as base:
        yield fake, f"{base}/client/v4"
