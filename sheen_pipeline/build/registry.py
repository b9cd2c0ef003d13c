"""The only way out of an npm install's sandbox: a Unix socket bound into it (see
registry_bridge.js), behind which this process forwards GET and HEAD requests to the configured
registry and nowhere else, whatever a manifest or lockfile names. Package tarballs (immutable on
a registry, checked by npm against their integrity) are kept in a cache only this process
writes, so builds share downloads without any build being able to change what another installs."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingMixIn, UnixStreamServer

import requests

SOCKET_NAME = "registry.sock"
BRIDGE_NAME = "bridge.js"
BRIDGE_SOURCE = Path(__file__).with_name("registry_bridge.js")
UPSTREAM_TIMEOUT_S = 60.0
FORWARDED_HEADERS = ("accept", "npm-command", "user-agent")


class _Server(ThreadingMixIn, UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, upstream: str, cache_dir: Path) -> None:
        super().__init__(path, _Forward)
        self.upstream = upstream.rstrip("/")
        self.cache_dir = cache_dir
        self.session = requests.Session()


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = UPSTREAM_TIMEOUT_S
    server: _Server

    def do_GET(self) -> None:
        self._forward(send_body=True)

    def do_HEAD(self) -> None:
        self._forward(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        """npm's own output says what it fetched; nothing to add to ours."""

    def _forward(self, send_body: bool) -> None:
        if not self.path.startswith("/") or self.path.startswith("//"):
            self._answer(400, b"only registry paths are served\n", "text/plain", send_body)
            return
        cached = self._cache_file()
        if cached is not None and cached.is_file():
            self._answer(200, cached.read_bytes(), "application/octet-stream", send_body)
            return
        headers = {name: self.headers[name] for name in FORWARDED_HEADERS if name in self.headers}
        try:
            response = self.server.session.get(
                self.server.upstream + self.path,
                headers=headers,
                timeout=UPSTREAM_TIMEOUT_S,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            message = f"the registry did not answer: {type(error).__name__}\n".encode()
            self._answer(502, message, "text/plain", send_body)
            return
        body = response.content
        if cached is not None and response.status_code == 200:
            _keep(cached, body)
        content_type = response.headers.get("content-type", "application/octet-stream")
        self._answer(response.status_code, body, content_type, send_body)

    def _cache_file(self) -> Path | None:
        """Where a tarball is kept (by a digest of its URL: no request names a path here)."""
        if "/-/" not in self.path or not self.path.endswith(".tgz"):
            return None
        key = hashlib.sha256(f"{self.server.upstream}{self.path}".encode()).hexdigest()
        return self.server.cache_dir / key[:2] / f"{key}.tgz"

    def _answer(self, status: int, body: bytes, content_type: str, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _keep(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=".tarball-", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    os.replace(staging, path)


@contextmanager
def registry_socket(upstream: str, cache_dir: Path) -> Iterator[Path]:
    """A fresh folder (to bind read-only into the sandbox) holding the socket that reaches the
    registry and the bridge script; served until the block ends, then removed. It is made in the
    system's temporary folder: a socket's path must stay short."""
    folder = Path(tempfile.mkdtemp(prefix="sheen-registry-"))
    folder.chmod(0o755)
    shutil.copyfile(BRIDGE_SOURCE, folder / BRIDGE_NAME)
    (folder / BRIDGE_NAME).chmod(0o644)
    server = _Server(str(folder / SOCKET_NAME), upstream, cache_dir)
    (folder / SOCKET_NAME).chmod(0o666)  # the sandbox's user (nobody) connects to it
    thread = threading.Thread(target=server.serve_forever, name="sheen-registry", daemon=True)
    thread.start()
    try:
        yield folder
    finally:
        server.shutdown()
        server.server_close()
        server.session.close()
        shutil.rmtree(folder)
