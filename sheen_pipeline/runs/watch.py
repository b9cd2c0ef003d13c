"""What runs beside `dagster dev`: new build jobs reach the UI through one code-location reload per
interval (never one per plan, whose cost grows with every stored plan), and a daemon that stopped
heartbeating is said out loud instead of leaving requests pending in silence."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import DagsterInstance
from dagster._daemon.controller import get_daemon_statuses

from sheen_pipeline.runs.webserver import reload_code_location

Say = Callable[[str], None]

STARTUP_GRACE_S = 60.0


def daemon_problem(instance: DagsterInstance) -> str | None:
    """Why the instance's daemon is not doing its work, or None when every daemon it needs has
    sent a recent heartbeat."""
    statuses = get_daemon_statuses(
        instance, instance.get_required_daemon_types(), ignore_errors=True
    )
    silent = sorted(name for name, status in statuses.items() if status.healthy is False)
    if not silent:
        return None
    return (
        f"no recent heartbeat from the Dagster daemon ({', '.join(silent)}): build requests "
        "are not picked up and queued runs do not start; restart `make dev`"
    )


@dataclass
class UiWatch:
    """One step per poll; reloads at most once per `reload_interval_s`, only when the number of
    stored plans changed since the last reload that worked."""

    instance: DagsterInstance
    count_plans: Callable[[], int]
    webserver_url: str
    reload_interval_s: float
    say: Say
    reload: Callable[[str], str | None] = reload_code_location
    started: float = field(default_factory=time.monotonic)
    _shown_plans: int | None = None
    _last_reload: float = float("-inf")
    _daemon_seen: bool = False
    _reported: str | None = None

    def step(self, now: float) -> None:
        self._sync_jobs(now)
        self._check_daemon(now)

    def _sync_jobs(self, now: float) -> None:
        if not self.webserver_url or now - self._last_reload < self.reload_interval_s:
            return
        plans = self.count_plans()
        if plans == self._shown_plans:
            return
        problem = self.reload(self.webserver_url)
        if problem and self._starting(now):
            return  # the webserver is still starting: try again at the next poll
        self._last_reload = now
        if problem:
            self.say(f"could not reload the code location at {self.webserver_url}: {problem}")
        else:
            self._shown_plans = plans

    def _starting(self, now: float) -> bool:
        return now - self.started < STARTUP_GRACE_S

    def _check_daemon(self, now: float) -> None:
        problem = daemon_problem(self.instance)
        self._daemon_seen = self._daemon_seen or problem is None
        if problem and not self._daemon_seen and self._starting(now):
            return  # the daemon is still starting
        if problem != self._reported:
            self.say(f"WARNING: {problem}" if problem else "the Dagster daemon is heartbeating")
            self._reported = problem
