"""Builds always end: the process running a build beats a heartbeat, and a build whose
heartbeat stopped (its process was killed, its machine lost) is failed with the reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sheen_pipeline.background import repeating
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import RUNNING_STATUSES, BuildStore

BEATS_PER_TIMEOUT = 6  # a beat every 10 s for the default 60 s timeout


@contextmanager
def heartbeat(store: BuildStore, build_id: str, timeout_s: float) -> Iterator[None]:
    """Beat for one build while this process runs it; at the end, say that no process runs it
    any more (so a next run waiting in the queue is not taken for a stalled one)."""
    store.beat(build_id, time.time())
    with repeating(
        lambda: store.beat(build_id, time.time()), timeout_s / BEATS_PER_TIMEOUT, "sheen-heartbeat"
    ):
        yield
    store.beat(build_id, None)


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
