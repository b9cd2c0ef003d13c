"""Benchmark: a burst of build requests on the embedded default (SQLite, offline provider, the
repository's dagster.yaml, browser checks on as `make dev` has them) with the Dagster daemon
running. Reports the time until every row has a run, until the first and the 20th preview, the
builds ended a minute in steady state (over --steady-s once every row has a run and the 20th
preview is ready), and the run queue's depth over time; with --drain, waits until every request
has ended and counts the ones that did not succeed.

    .venv/bin/python -m tests.bench.burst [--rows 1000] [--checks on|off] [--steady-s 120] [--drain]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy import func, select

from sheen_pipeline.models import new_build_id, parse_build_request
from sheen_pipeline.store.requests import RequestStore, new_request_id
from sheen_pipeline.store.tables import build_requests
from tests.conftest import REPO_ROOT
from tests.support.processes import running, sheen, sheen_cli_env

PROMPTS = ["a blog about tea", "a todo app", "a landing page for Blue Fern Coffee with a menu"]
PREVIEW_MARKS = (1, 20)
ENDED = ("succeeded", "failed")


@dataclass
class Burst:
    rows: int
    started: float = field(default_factory=time.monotonic)
    all_runs_s: float | None = None
    previews_s: dict[int, float] = field(default_factory=dict)
    drained_s: float | None = None
    steady_s: float = 120
    steady_from: tuple[float, int] | None = None  # (s, requests ended) once both are reached
    steady_per_minute: float | None = None
    queue: list[tuple[float, int, int]] = field(default_factory=list)  # (s, queued, in flight)
    statuses: dict[str, int] = field(default_factory=dict)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)


def add_rows(store: RequestStore, count: int) -> None:
    requests = [parse_build_request(prompt=PROMPTS[i % len(PROMPTS)]) for i in range(count)]
    for request in requests:
        store.add(request, new_request_id(), new_build_id())


def statuses(store: RequestStore) -> dict[str, int]:
    query = select(build_requests.c.status, func.count()).group_by(build_requests.c.status)
    with store.engine.connect() as conn:
        return {status: count for status, count in conn.execute(query)}


def observe(burst: Burst, instance: DagsterInstance, store: RequestStore) -> None:
    now = burst.elapsed()
    runs = instance.get_runs_count(RunsFilter(job_name="plan_build"))
    if burst.all_runs_s is None and runs >= burst.rows:
        burst.all_runs_s = now
    burst.statuses = statuses(store)
    for mark in PREVIEW_MARKS:
        if mark not in burst.previews_s and burst.statuses.get("succeeded", 0) >= mark:
            burst.previews_s[mark] = now
    ended = sum(burst.statuses.get(s, 0) for s in ENDED)
    if burst.drained_s is None and ended >= burst.rows:
        burst.drained_s = now
    if burst.steady_from is None and PREVIEW_MARKS[-1] in burst.previews_s and burst.all_runs_s:
        burst.steady_from = (now, ended)
    elif burst.steady_from is not None and burst.steady_per_minute is None:
        since, ended_then = burst.steady_from
        if now - since >= burst.steady_s or ended >= burst.rows:
            burst.steady_per_minute = round((ended - ended_then) * 60 / (now - since), 1)
    queued = instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
    in_flight = instance.get_runs_count(
        RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED])
    )
    if not burst.queue or now - burst.queue[-1][0] >= 30:
        burst.queue.append((now, queued, in_flight))
        print(f"{now:7.1f}s  runs {runs:5}  queued {queued:5}  {burst.statuses}", file=sys.stderr)


def run(rows: int, checks: str, steady_s: float, drain: bool, timeout_s: float) -> Burst:
    workdir = Path(tempfile.mkdtemp(prefix="sheen-burst-"))
    env = sheen_cli_env(workdir, SHEEN_PREVIEW_CHECKS=checks)
    shutil.copy(REPO_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    assert sheen(env, "init").returncode == 0
    store = RequestStore(f"sqlite:///{Path(env['SHEEN_HOME']) / 'sheen.db'}")
    add_rows(store, rows)
    daemon = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"]
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]  # dagster.yaml reads it
    burst = Burst(rows, steady_s=steady_s)
    with (
        DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
        running(daemon, env, workdir / "daemon.log"),
    ):
        while burst.elapsed() < timeout_s:
            observe(burst, instance, store)
            done = burst.all_runs_s is not None and burst.steady_per_minute is not None
            if (burst.drained_s is not None) if drain else done:
                break
            time.sleep(1)
    shutil.rmtree(workdir, ignore_errors=True)
    return burst


def report(burst: Burst) -> None:
    def seconds(value: float | None) -> str:
        return "not reached" if value is None else f"{value:.0f} s"

    lost = burst.rows - sum(burst.statuses.values())
    rows = [
        ("rows inserted", str(burst.rows)),
        ("every row has a run", seconds(burst.all_runs_s)),
        ("first preview", seconds(burst.previews_s.get(1))),
        ("20th preview", seconds(burst.previews_s.get(20))),
        (
            f"builds ended a minute in steady state ({burst.steady_s:.0f} s once every row has a run)",
            "not reached" if burst.steady_per_minute is None else str(burst.steady_per_minute),
        ),
        ("every request ended", seconds(burst.drained_s)),
        ("requests by status at the end", json.dumps(burst.statuses, sort_keys=True)),
        (
            "queue depth (s: queued/in flight)",
            ", ".join(
                f"{t:.0f}: {q}/{f}" for t, q, f in burst.queue[:: max(1, len(burst.queue) // 10)]
            ),
        ),
    ]
    print("| burst of requests | figure |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(
        json.dumps(
            {
                "benchmark": "burst",
                "rows": burst.rows,
                "all_rows_have_runs_s": burst.all_runs_s,
                "first_preview_s": burst.previews_s.get(1),
                "preview_20_s": burst.previews_s.get(20),
                "steady_builds_per_minute": burst.steady_per_minute,
                "drained_s": burst.drained_s,
                "statuses": burst.statuses,
                "rows_missing": lost,
                "queue_depth": burst.queue,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--checks", choices=("on", "off"), default="on", help="browser checks")
    parser.add_argument("--steady-s", type=float, default=120)
    parser.add_argument("--drain", action="store_true", help="wait until every request ended")
    parser.add_argument("--timeout-s", type=float, default=3600)
    args = parser.parse_args()
    report(run(args.rows, args.checks, args.steady_s, args.drain, args.timeout_s))


if __name__ == "__main__":
    main()
