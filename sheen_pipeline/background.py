"""Work repeated in a background thread for as long as a block runs (a lease renewed while a
request is in flight, a build's heartbeat, progress read while a run executes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def repeating(action: Callable[[], None], interval_s: float, name: str) -> Iterator[None]:
    """Call action every interval_s until the block ends (and the thread has stopped); an
    action that fails is logged and tried again at the next interval."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                action()
            except Exception:
                log.exception("%s failed; trying again in %.1f s", name, interval_s)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
