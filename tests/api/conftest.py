"""The API under `sheen serve`'s app on loopback, and a client that signs what it posts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sheen_pipeline.api.app import create_app
from sheen_pipeline.config import Settings
from sheen_pipeline.events.signing import signed_headers
from sheen_pipeline.store.requests import RequestStore
from tests.support.server import serving

SECRET = "ingress-secret-0123456789"
API_TOKEN = "operator-token-0123456789"


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.requests = RequestStore(Settings.from_env().database_url)

    def get(
        self,
        path: str,
        token: str | None = API_TOKEN,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """A read, as the operator by default."""
        auth = {} if token is None else {"Authorization": f"Bearer {token}"}
        return requests.get(f"{self.base}{path}", headers=auth | (headers or {}), **kwargs)

    def queued(self) -> int:
        return len(self.requests.recent(1000))

    def post(
        self,
        payload: object,
        secret: str = SECRET,
        now: float | None = None,
        raw: bytes | None = None,
        message_id: str | None = None,
    ) -> requests.Response:
        """A signed POST; each gets a new webhook-id unless one is given (a retry)."""
        body = raw if raw is not None else json.dumps(payload).encode()
        return requests.post(
            f"{self.base}/api/builds",
            data=body,
            headers=signed_headers(secret, message_id or f"msg_{uuid.uuid4().hex}", body, now),
            timeout=10,
        )


@pytest.fixture
def api(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("SHEEN_INGRESS_SECRET", SECRET)
    monkeypatch.setenv("SHEEN_INGRESS_RATE_PER_MIN", "3")
    monkeypatch.setenv("SHEEN_API_TOKEN", API_TOKEN)
    with serving(create_app(Settings.from_env())) as base:
        yield Api(base)
