from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sheen_pipeline.events.runtime import stop_dispatchers
from tests.support.webhooks import COMPRESSED_SCHEDULE, SECRET


@pytest.fixture
def webhook_env(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Webhooks on, with quick retries, probes and leases; the test sets SHEEN_WEBHOOK_URL."""
    monkeypatch.setenv("SHEEN_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SHEEN_WEBHOOK_SCHEDULE", COMPRESSED_SCHEDULE)
    monkeypatch.setenv("SHEEN_WEBHOOK_PROBE_S", "0.3")
    monkeypatch.setenv("SHEEN_WEBHOOK_LEASE_S", "1")
    monkeypatch.setenv("SHEEN_WEBHOOK_TIMEOUT_S", "2")
    monkeypatch.setenv("SHEEN_WEBHOOK_RATE_PER_S", "50")
    yield monkeypatch
    stop_dispatchers()
