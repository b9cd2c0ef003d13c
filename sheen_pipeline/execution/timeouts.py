"""Time limits on calls that cannot be interrupted (a provider call blocked on the network):
the call runs in a daemon thread and is abandoned when its time is up."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TaskTimeout(TimeoutError):
    def __init__(self, what: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(f"{what} timed out after {timeout_s:g}s")


def call_with_timeout(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """The call's result, its exception, or TaskTimeout; an abandoned call's result is dropped."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # handed to the caller below
            failure.append(error)

    worker = threading.Thread(target=target, name=f"sheen-call:{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TaskTimeout(what, timeout_s)
    if failure:
        raise failure[0]
    return outcome[0]
