"""The Cloudflare target, on Workers static assets through the official SDK: one Worker per
project, one Worker version per build (its own preview URL), and a deployment of a version as
the project's production. Files are content-addressed: only what Cloudflare lacks is uploaded."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, cast

import cloudflare
import httpx
from cloudflare import Cloudflare
from cloudflare.types.workers.scripts.assets.upload_create_params import Manifest

from sheen_pipeline.deploy.target import DeployError, asset_hash
from sheen_pipeline.fsutil import regular_files
from sheen_pipeline.models import Deployed, FileArtifact

WORKER_MODULE = "worker.js"
WORKER_SOURCE = b"export default { fetch: (request, env) => env.ASSETS.fetch(request) };\n"
COMPATIBILITY_DATE = "2025-06-01"
PLACEHOLDER = (
    b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Not promoted yet</title></head>"
    b"<body><h1>No build of this project is in production yet</h1></body></html>"
)
WEB_TYPES = {  # fixed, whatever the host's mime table says
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
}
MAX_RETRIES = 4  # the SDK retries 408, 409, 429 and 5xx with exponential backoff
PERMISSION = "Account > Workers Scripts > Edit"


def script_name(project_id: str) -> str:
    """A Worker name for a project id: lowercase letters, digits and '-', readable, and
    distinct for distinct ids (a short hash of the id is appended)."""
    readable = re.sub(r"[^a-z0-9-]+", "-", project_id.lower()).strip("-")[:40] or "project"
    return f"sheen-{readable}-{hashlib.sha256(project_id.encode()).hexdigest()[:6]}"


class CloudflareTarget:
    name = "cloudflare"

    def __init__(self, api_token: str, account_id: str, base_url: str | None = None) -> None:
        if not api_token or not account_id:
            raise DeployError(
                "SHEEN_DEPLOY_TARGET=cloudflare needs CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID"
            )
        self.account_id = account_id
        self.client = Cloudflare(
            api_token=api_token, base_url=base_url or None, max_retries=MAX_RETRIES
        )
        self._subdomain: str | None = None

    def deploy(self, project_id: str, build_id: str, dist: Path) -> Deployed:
        files = {
            "/" + path.relative_to(dist).as_posix(): path.read_bytes()
            for path in regular_files(dist)
        }
        script = script_name(project_id)
        with self._refusals("deploy"):
            self._ensure_script(script)
            completion, uploaded = self._upload(script, files)
            # The raw answer: cloudflare 5.9 cannot parse a version upload's answer into its
            # model (its ResourcesBindings is no pydantic model), so the id is read as JSON.
            answer = self.client.workers.scripts.versions.with_raw_response.create(
                script,
                account_id=self.account_id,
                metadata=_metadata(completion, f"sheen build {build_id}"),
                files=[(WORKER_MODULE, WORKER_SOURCE, "application/javascript+module")],
            )
            envelope = cast(dict[str, Any], answer.json())
            version_id = str((envelope.get("result") or {}).get("id") or "")
            subdomain = self._workers_subdomain()
        if not version_id:
            raise DeployError("Cloudflare accepted the version but returned no id")
        contents = {asset_hash(path, data): data for path, data in files.items()}
        sent = [data for digest, data in contents.items() if digest in uploaded]
        return Deployed(
            target=self.name,
            url=f"https://{version_id[:8]}-{script}.{subdomain}.workers.dev/",
            files=tuple(FileArtifact.of(p.removeprefix("/"), d) for p, d in files.items()),
            version_id=version_id,
            uploaded_files=len(sent),
            reused_files=len(contents) - len(sent),
            uploaded_bytes=sum(map(len, sent)),
            reused_bytes=sum(map(len, contents.values())) - sum(map(len, sent)),
        )

    def promote(self, project_id: str, deployed: Deployed) -> str:
        if deployed.version_id is None:
            raise DeployError("this build has no Cloudflare version to promote")
        script = script_name(project_id)
        with self._refusals("promotion"):
            self.client.workers.scripts.deployments.create(
                script,
                account_id=self.account_id,
                strategy="percentage",
                versions=[{"version_id": deployed.version_id, "percentage": 100}],
            )
            return f"https://{script}.{self._workers_subdomain()}.workers.dev/"

    def _ensure_script(self, script: str) -> None:
        """Converge the project's Worker to what a deploy needs, whatever an earlier deploy left:
        it exists (made on the first deploy, serving a placeholder until a build is promoted),
        and it is on workers.dev with preview URLs (read, and set when it is not)."""
        try:
            settings = self.client.workers.scripts.subdomain.get(script, account_id=self.account_id)
        except cloudflare.NotFoundError:
            settings = None
            completion, _ = self._upload(script, {"/index.html": PLACEHOLDER})
            self.client.workers.scripts.update(
                script,
                account_id=self.account_id,
                metadata=_metadata(completion, "sheen: placeholder until a build is promoted"),
                files=[(WORKER_MODULE, WORKER_SOURCE, "application/javascript+module")],
            )
        if settings is None or not (settings.enabled and settings.previews_enabled):
            self.client.workers.scripts.subdomain.create(
                script, account_id=self.account_id, enabled=True, previews_enabled=True
            )

    def _upload(self, script: str, files: dict[str, bytes]) -> tuple[str, set[str]]:
        """Register the manifest, upload the buckets of files Cloudflare lacks; the completion
        token and the hashes that were uploaded. Each file goes as a file part typed by its
        extension (what the type of a part is, Cloudflare serves), so an empty file is sent
        too (the SDK's form fields drop an empty value)."""
        by_hash = {asset_hash(path, data): (path, data) for path, data in files.items()}
        manifest = {
            path: Manifest(hash=asset_hash(path, data), size=len(data))
            for path, data in files.items()
        }
        session = self.client.workers.scripts.assets.upload.create(
            script, account_id=self.account_id, manifest=manifest
        )
        if session is None or not session.jwt:
            raise DeployError("Cloudflare opened no upload session")
        buckets = session.buckets or []
        if not buckets:
            return session.jwt, set()  # Cloudflare has every file: the token completes it
        completion, uploaded = None, set()
        for bucket in buckets:
            answer = self.client.post(
                f"/accounts/{self.account_id}/workers/assets/upload",
                cast_to=httpx.Response,
                body={},
                files=[(digest, _file_part(digest, *by_hash[digest])) for digest in bucket],
                options={
                    "params": {"base64": "true"},
                    "headers": {
                        "Authorization": f"Bearer {session.jwt}",
                        "Content-Type": "multipart/form-data",
                    },
                },
            )
            uploaded |= set(bucket)
            completion = _result(answer).get("jwt") or completion
        if not completion:
            raise DeployError(
                "Cloudflare took every asset bucket but returned no completion token, so the "
                "upload cannot be finished; deploy again"
            )
        return str(completion), uploaded

    def _workers_subdomain(self) -> str:
        if self._subdomain is None:
            self._subdomain = self.client.workers.subdomains.get(
                account_id=self.account_id
            ).subdomain
        return self._subdomain

    @contextmanager
    def _refusals(self, what: str) -> Iterator[None]:
        """SDK errors as DeployErrors that name what is missing, never the token."""
        try:
            yield
        except (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError) as error:
            raise DeployError(
                f"Cloudflare refused the {what} (HTTP {error.status_code}): CLOUDFLARE_API_TOKEN "
                f"needs the permission {PERMISSION} on account {self.account_id}"
            ) from None
        except cloudflare.APIStatusError as error:
            raise DeployError(
                f"Cloudflare answered the {what} with HTTP {error.status_code}: "
                f"{_messages(error.body)}"
            ) from None
        except cloudflare.APIConnectionError as error:
            raise DeployError(f"Cloudflare could not be reached for the {what}: {error}") from None


def _metadata(completion_jwt: str, message: str) -> Any:
    """A module Worker serving the uploaded assets (Any: the SDK's version-upload type leaves
    out `assets`, which the API takes, as its script-upload type has it)."""
    return {
        "main_module": WORKER_MODULE,
        "compatibility_date": COMPATIBILITY_DATE,
        "bindings": [{"type": "assets", "name": "ASSETS"}],
        "assets": {"jwt": completion_jwt, "config": {"html_handling": "auto-trailing-slash"}},
        "annotations": {"workers/message": message},
    }


def content_type(path: str) -> str:
    """The type a file is served as, from its extension."""
    suffix = PurePosixPath(path).suffix.lower()
    return WEB_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _file_part(digest: str, path: str, data: bytes) -> tuple[str, bytes, str]:
    """An asset as Cloudflare's direct upload takes it: a file named by its hash, its content
    base64-encoded, typed by its extension."""
    return (digest, base64.b64encode(data), content_type(path))


def _result(answer: httpx.Response) -> dict[str, Any]:
    envelope = answer.json()
    result = envelope.get("result") if isinstance(envelope, dict) else None
    return result if isinstance(result, dict) else {}


def _messages(body: object) -> str:
    """The envelope's error messages, or what little there is."""
    if isinstance(body, dict):
        errors = body.get("errors") or []
        texts = [str(e.get("message")) for e in errors if isinstance(e, dict)]
        if texts:
            return "; ".join(texts)
    return "no details"
