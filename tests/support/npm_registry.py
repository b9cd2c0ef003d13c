"""A package registry on loopback that serves only what a test publishes (packuments and
tarballs, as the npm registry does), so a test can prove which tarball a build installed."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.server import LoopbackHTTPServer


class LocalRegistry(LoopbackHTTPServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.packuments: dict[str, dict[str, Any]] = {}
        self.tarballs: dict[str, bytes] = {}
        self.requested: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def publish(self, name: str, version: str, files: dict[str, str]) -> bytes:
        """Publish name@version holding files (and its package.json); returns the tarball."""
        tarball = _tarball(
            {"package.json": json.dumps({"name": name, "version": version}), **files}
        )
        path = f"/{name}/-/{name}-{version}.tgz"
        self.tarballs[path] = tarball
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        packument = self.packuments.setdefault(name, {"name": name, "versions": {}})
        packument["dist-tags"] = {"latest": version}
        packument["versions"][version] = {
            "name": name,
            "version": version,
            "dist": {
                "tarball": f"{self.url.rstrip('/')}{path}",
                "integrity": integrity,
                "shasum": hashlib.sha1(tarball).hexdigest(),
            },
        }
        return tarball


def _tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: LocalRegistry

    def do_GET(self) -> None:
        self.server.requested.append(self.path)
        name = self.path.lstrip("/").replace("%2f", "/").replace("%2F", "/")
        if self.path in self.server.tarballs:
            self._send(self.server.tarballs[self.path], "application/octet-stream")
        elif name in self.server.packuments:
            self._send(json.dumps(self.server.packuments[name]).encode(), "application/json")
        else:
            self._send(b'{"error":"not found"}', "application/json", 404)

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
