"""A webhook receiver on loopback that can fail, delay or hold requests, and records them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.server import LoopbackHTTPServer


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    status: int


class Receiver(LoopbackHTTPServer):
    """`behave(n)` is called with the 1-based request number and returns the status to answer;
    it may sleep or block first."""

    def __init__(self, behave: Callable[[int], int] = lambda n: 200) -> None:
        super().__init__(_Handler)
        self.behave = behave
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 200]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.server.lock:
            number = len(self.server.received) + 1
            record = Received(body, dict(self.headers.items()), 0)
            self.server.received.append(record)
        status = self.server.behave(number)
        record.status = status
        try:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting (its timeout)
