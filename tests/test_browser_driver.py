"""The preview checks of one process share one Playwright driver (one Node process, started
once), in a thread of its own that works from inside an event loop too; work that fails takes
the driver down with it, and the next check starts a new one."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from sheen_pipeline.checks.driver import in_driver


def test_checks_share_one_driver_until_one_fails() -> None:
    seen: list[Any] = []  # kept, so that no object's id is reused

    def note(playwright: Any) -> str:
        seen.append(playwright)
        return threading.current_thread().name

    async def from_an_event_loop() -> str:  # as the build job's executor calls the checks
        return in_driver(note)

    assert in_driver(note) == "sheen-browser"
    assert asyncio.run(from_an_event_loop()) == "sheen-browser"
    assert seen[0] is seen[1]

    def crash(_playwright: Any) -> None:
        raise RuntimeError("the browser's connection closed")

    with pytest.raises(RuntimeError, match="connection closed"):
        in_driver(crash)
    in_driver(note)
    assert seen[2] is not seen[1]
    assert in_driver(lambda playwright: playwright.chromium.name) == "chromium"
