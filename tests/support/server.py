"""Servers on a loopback port, in a thread, for the length of a test: an ASGI app with uvicorn, or
a plain `http.server` handler (LoopbackHTTPServer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import uvicorn

from tests.support.waiting import free_port

START_TIMEOUT_S = 30.0


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[str]:
    """The app at http://127.0.0.1:<port> until the block ends (config: more uvicorn settings)."""
    port = free_port()
    settings = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, name="sheen-loopback", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A handler served on a free loopback port from `with` to its end, in a daemon thread."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
