"""Run an ASGI app with uvicorn on a loopback port, in a thread, for the length of a test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
