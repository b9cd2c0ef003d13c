"""Time limits on provider calls: the call is cancelled when its time is up (its request closed,
nothing written), not left running in the background."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import anyio

T = TypeVar("T")


class TaskTimeout(TimeoutError):
    def __init__(self, what: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(f"{what} timed out after {timeout_s:g}s")


async def within(call: Awaitable[T], timeout_s: float, what: str) -> T:
    """The call's result or its exception; TaskTimeout once timeout_s has passed."""
    with anyio.move_on_after(timeout_s) as scope:
        return await call
    assert scope.cancelled_caught
    raise TaskTimeout(what, timeout_s)
