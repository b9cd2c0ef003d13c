"""One Playwright driver per process, kept between checks. Starting it costs about 0.4 CPU-s (a
Node process loading Playwright), once per check before; a process that checks many times (an
evaluation's builds, a build's repair rounds) now pays it once. Each check still launches a
browser of its own, in a sandbox of its own, so nothing of one build's pages can reach
another's.

Playwright's sync API belongs to the thread that started it: every use runs in the driver's own
thread, which also keeps it out of the build job's event loop. Checks in one process take turns.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import Any, TypeVar

T = TypeVar("T")
STOP_TIMEOUT_S = 10.0
Work = tuple[Callable[[Any], Any], Future[Any]]


class Driver:
    """A thread that owns a Playwright instance, started on first use. Work that raises stops
    it (a crashed browser may have taken the connection down); the next use starts a new one."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._playwright: Any = None
        self._thread = threading.Thread(target=self._serve, name="sheen-browser", daemon=True)
        self._thread.start()

    def run(self, work: Callable[[Any], T]) -> T:
        """work(playwright) in the driver's thread; its result, or what it raised."""
        done: Future[T] = Future()
        self._work.put((work, done))
        return done.result()

    def close(self) -> None:
        self._work.put(None)
        self._thread.join(STOP_TIMEOUT_S)

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            work, done = item
            try:
                if self._playwright is None:
                    from playwright.sync_api import sync_playwright

                    self._playwright = sync_playwright().start()
                done.set_result(work(self._playwright))
            except BaseException as error:
                self._stop()
                done.set_exception(error)
        self._stop()

    def _stop(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with suppress(Exception):  # already gone with its Node process: nothing to stop
                playwright.stop()


_driver: Driver | None = None
_driver_lock = threading.Lock()


def in_driver(work: Callable[[Any], T]) -> T:
    """work(playwright), on this process's driver."""
    global _driver
    with _driver_lock:
        if _driver is None:
            _driver = Driver()
            atexit.register(_driver.close)
        driver = _driver
    return driver.run(work)


def _forget_after_fork() -> None:
    """A forked child has none of the driver's thread: it starts its own when it needs one."""
    global _driver
    _driver = None


os.register_at_fork(after_in_child=_forget_after_fork)
