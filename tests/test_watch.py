"""`sheen watch` and `sheen status`: one code-location reload per interval, not one per plan, and
a daemon that stopped heartbeating is reported."""

from __future__ import annotations

import time

from dagster import DagsterInstance
from dagster._daemon.types import DaemonHeartbeat

from sheen_pipeline.runs.watch import STARTUP_GRACE_S, UiWatch, daemon_problem


def beat(instance: DagsterInstance, at: float) -> None:
    for daemon_type in instance.get_required_daemon_types():
        instance.add_daemon_heartbeat(DaemonHeartbeat(at, daemon_type, None, None))


def test_a_burst_of_plans_costs_one_reload_per_interval(instance: DagsterInstance) -> None:
    plans, reloads, said = [0], [], []
    watch = UiWatch(
        instance,
        lambda: plans[0],
        "http://127.0.0.1:1",
        reload_interval_s=30,
        say=said.append,
        reload=lambda url: reloads.append(url),  # type: ignore[func-returns-value]
        started=0.0,
    )
    beat(instance, time.time())
    watch.step(0.0)
    assert len(reloads) == 1  # the jobs present at start
    for second in range(1, 30):
        plans[0] += 10
        watch.step(float(second))
    assert len(reloads) == 1
    watch.step(30.0)
    assert len(reloads) == 2
    watch.step(61.0)
    assert len(reloads) == 2  # nothing new since
    assert said == []


def test_a_failed_reload_is_reported_and_tried_again(instance: DagsterInstance) -> None:
    said: list[str] = []
    watch = UiWatch(instance, lambda: 1, "http://127.0.0.1:1", 5, said.append, started=0.0)
    beat(instance, time.time())
    watch.step(1.0)
    assert said == []  # the webserver may still be starting
    late = STARTUP_GRACE_S + 1
    watch.step(late)
    watch.step(late + 1)  # within the interval: not tried again
    watch.step(late + 6)
    assert len(said) == 2 and all("could not reload the code location" in s for s in said)


def test_a_silent_daemon_is_reported_once_and_its_return_too(instance: DagsterInstance) -> None:
    said: list[str] = []
    watch = UiWatch(instance, lambda: 0, "", 30, said.append, started=0.0)
    watch.step(1.0)
    assert said == []  # still starting
    watch.step(STARTUP_GRACE_S + 1)
    watch.step(STARTUP_GRACE_S + 2)
    assert len(said) == 1 and said[0].startswith("WARNING: no recent heartbeat")
    beat(instance, time.time())
    watch.step(STARTUP_GRACE_S + 3)
    assert said[1] == "the Dagster daemon is heartbeating"


def test_daemon_problem_names_the_silent_daemons(instance: DagsterInstance) -> None:
    problem = daemon_problem(instance)
    assert problem is not None and "SENSOR" in problem
    beat(instance, time.time() - 3600)
    assert daemon_problem(instance) is not None
    beat(instance, time.time())
    assert daemon_problem(instance) is None
