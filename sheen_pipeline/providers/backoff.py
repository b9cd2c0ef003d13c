"""Another attempt of a provider call after a transient error, and how long to wait first: in
one place for every provider and path (Retry-After honoured, but never beyond BACKOFF_MAX_S)."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from sheen_pipeline.providers.base import ProviderError

T = TypeVar("T")

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0


def backoff_s(attempt: int, retry_after: str | None) -> float:
    """The server's Retry-After when it gave one (capped), else exponential; with jitter that
    only ever lengthens the server's wait (a retry sent early is refused again, and may be
    paid for) and spreads our own waits."""
    try:
        asked = min(float(retry_after or ""), BACKOFF_MAX_S)
    except ValueError:
        ours = min(BACKOFF_BASE_S * 2.0**attempt, BACKOFF_MAX_S)
        return ours * (1 - 0.25 * random.random())
    return min(asked * (1 + 0.25 * random.random()), BACKOFF_MAX_S)  # never below asked


def with_retries(call: Callable[[], T], max_retries: int) -> T:
    for attempt in range(max_retries + 1):
        try:
            return call()
        except ProviderError as error:
            if not error.retryable or attempt == max_retries:
                raise
            time.sleep(backoff_s(attempt, error.retry_after))
    raise AssertionError("unreachable")


async def with_retries_async(call: Callable[[], Awaitable[T]], max_retries: int) -> T:
    for attempt in range(max_retries + 1):
        try:
            return await call()
        except ProviderError as error:
            if not error.retryable or attempt == max_retries:
                raise
            await anyio.sleep(backoff_s(attempt, error.retry_after))
    raise AssertionError("unreachable")
