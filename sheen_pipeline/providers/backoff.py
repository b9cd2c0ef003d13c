"""How long to wait before another attempt of a provider call, in one place for every path."""

from __future__ import annotations

import random

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0


def backoff_s(attempt: int, retry_after: str | None) -> float:
    """The server's Retry-After when it gave one (capped), else exponential; with jitter."""
    try:
        delay = min(float(retry_after or ""), BACKOFF_MAX_S)
    except ValueError:
        delay = min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)
    return delay * (1 - 0.25 * random.random())
