"""Builds always end: the process running a build beats a heartbeat, and a build whose
heartbeat stopped (its process was killed, its machine lost) is failed with the reason."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sheen_pipeline.logs import get_logger
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import RUNNING_STATUSES, BuildStore

BEATS_PER_TIMEOUT = 6  # a beat every 10 s for the default 60 s timeout
log = get_logger(__name__)


class Heartbeat:
    """Beats for one build from a background thread while this process runs it; stop() says
    that no process runs it any more (a queued next run is not stalled)."""

    def __init__(self, store: BuildStore, build_id: str, timeout_s: float) -> None:
        self.store = store
        self.build_id = build_id
        self.interval_s = timeout_s / BEATS_PER_TIMEOUT
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sheen-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.store.beat(self.build_id, time.time())
            except Exception:  # a database hiccup: the next beat may get through
                log.warning("heartbeat_failed", build_id=self.build_id, exc_info=True)
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.store.beat(self.build_id, None)


@dataclass(frozen=True)
class Stalled:
    build_id: str
    run_id: str | None
    reason: str


def end_stalled(service: BuildService, build_id: str | None = None) -> list[Stalled]:
    """Fail every build (or just build_id) whose process stopped beating; what was failed."""
    timeout_s = service.settings.build_heartbeat_timeout_s
    cutoff, ended = time.time() - timeout_s, []
    for stalled_id, run_id, last_beat in service.store.stalled(cutoff):
        if build_id is not None and stalled_id != build_id:
            continue
        since = datetime.fromtimestamp(last_beat, UTC)
        reason = (
            f"the process running the build stopped: no heartbeat since {since:%H:%M:%S} UTC "
            f"(over {timeout_s:g} s)"
        )
        if service.store.get_build(stalled_id).status in RUNNING_STATUSES:
            service.fail(stalled_id, reason, stalled_before=cutoff)
            ended.append(Stalled(stalled_id, run_id, reason))
    return ended
