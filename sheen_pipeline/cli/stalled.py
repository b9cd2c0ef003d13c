"""Ending builds whose process died, for setups with no daemon: `sheen serve` checks every few
seconds, and a follower of one build (`sheen events --follow`) checks its build."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sheen_pipeline.cli.app import ensure_dagster_home
from sheen_pipeline.config import Settings

STALLED_CHECK_S = 15.0
STALLED_POLLS = 10  # `events --follow` polls every 0.5 s and looks for a dead build every 5 s


def end_stalled_builds_until(settings: Settings, stop: threading.Event) -> None:
    """What the daemon's stalled_build_sensor does, for setups that run `sheen serve` alone."""
    interval_s = min(STALLED_CHECK_S, settings.build_heartbeat_timeout_s / 2)
    with stalled_build_ender(settings) as end_stalled:
        while not stop.wait(interval_s):
            try:
                end_stalled(None)
            except Exception:  # a database hiccup: try again next time
                logging.getLogger(__name__).exception("ending stalled builds failed")


def end_if_stalled(settings: Settings, build_id: str) -> None:
    """A follower of a build whose process died ends it rather than wait forever, even where
    no `sheen serve` or daemon runs."""
    import time

    from sheen_pipeline.store.builds import BuildStore

    cutoff = time.time() - settings.build_heartbeat_timeout_s
    if any(stalled[0] == build_id for stalled in BuildStore(settings.database_url).stalled(cutoff)):
        with stalled_build_ender(settings) as end_stalled:
            end_stalled(build_id)


@contextmanager
def stalled_build_ender(settings: Settings) -> Iterator[Callable[[str | None], object]]:
    """Ends stalled builds (all, or one) and marks their runs, on the instance `sheen build`
    runs in; the service and the instance are made once and the instance closed after."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.stalled import end_stalled_builds
    from sheen_pipeline.service import BuildService

    ensure_dagster_home(settings)
    service = BuildService(settings)
    with DagsterInstance.get() as instance:
        yield lambda build_id: end_stalled_builds(service, instance, build_id)
