"""Benchmark: what a Celery worker that has just started costs a build. A worker is started (its
time until /healthz answers is its start-up), then two builds run on it one after the other: the
first build's steps are the first its pool processes ever run, the second's run on processes
that have run steps before. Per step, the delay is from the run submitting it (dagster-celery's
"Submitting celery task" event) to the step starting on the worker. Needs Postgres and RabbitMQ
(SHEEN_TEST_DATABASE_URL, SHEEN_TEST_BROKER_URL) and starts moto's S3 on loopback.

    .venv/bin/python -m tests.bench.cold_worker [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

from sheen_pipeline.runs.names import PLAN_JOB_NAME as PLAN
from tests.support.builds import PROMPT
from tests.support.cluster import celery_worker, client_env, shared_services
from tests.support.processes import sheen

SUBMITTED = 'Submitting celery task for step "'


def step_delays(instance: DagsterInstance, run_id: str) -> list[float]:
    """Seconds from each step's submission to its start on a worker."""
    submitted: dict[str, float] = {}
    delays = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type is DagsterEventType.ENGINE_EVENT and entry.user_message.startswith(
            SUBMITTED
        ):
            submitted[entry.user_message[len(SUBMITTED) :].split('"', 1)[0]] = entry.timestamp
        elif event.event_type is DagsterEventType.STEP_START and event.step_key in submitted:
            delays.append(entry.timestamp - submitted[event.step_key])
    return delays


def build_run_id(instance: DagsterInstance, before: set[str]) -> str:
    (run,) = [r for r in instance.get_runs() if r.run_id not in before and r.job_name != PLAN]
    return run.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sheen-cold-worker-"))
    with shared_services(SHEEN_PREVIEW_CHECKS="off") as shared:
        client = client_env(root, shared)
        os.environ["SHEEN_DAGSTER_POSTGRES_URL"] = client["SHEEN_DAGSTER_POSTGRES_URL"]
        assert sheen(client, "init").returncode == 0
        started = time.monotonic()
        with celery_worker(root, "worker", shared, args.concurrency):
            ready_s = time.monotonic() - started
            delays = []
            with DagsterInstance.from_config(client["DAGSTER_HOME"]) as instance:
                for n in range(2):
                    seen = {r.run_id for r in instance.get_runs()}
                    built = sheen(client, "build", f"{PROMPT} number {n}", "--json")
                    assert built.returncode == 0, built.stderr[-2000:]
                    delays.append(step_delays(instance, build_run_id(instance, seen)))
    first, second = delays
    print("| a worker that has just started | seconds |\n|---|---|")
    print(f"| start until /healthz answers ({args.concurrency} processes) | {ready_s:.1f} |")
    for name, values in (("first build", first), ("second build", second)):
        print(
            f"| {name}: step submitted → started, first / median / max | "
            f"{values[0]:.2f} / {statistics.median(values):.2f} / {max(values):.2f} |"
        )
    print(
        json.dumps(
            {
                "benchmark": "cold_worker",
                "ready_s": round(ready_s, 2),
                "first_build_delays_s": [round(v, 2) for v in first],
                "second_build_delays_s": [round(v, 2) for v in second],
            }
        )
    )


if __name__ == "__main__":
    main()
