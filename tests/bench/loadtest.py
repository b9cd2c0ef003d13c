"""Load test (a benchmark, not a timed test): N builds submitted at once, each a 6-task plan,
against a local model server (Anthropic's wire format) that takes LATENCY seconds per call, on
two setups:

- embedded: the default on one machine (SQLite, the repository's dagster.yaml, the daemon's run
  workers running each build's tasks with the async executor);
- celery: Postgres for the app and Dagster, RabbitMQ, the S3 artifact store (moto), the daemon's
  run workers sending each step to WORKERS `dagster-celery` workers.

Prints, per setup, builds per minute, p50/p95 time from submission to the first `plan_partial`
and to the preview, model calls in flight, and CPU and memory of each worker (process tree);
then one JSON line.

    .venv/bin/python -m tests.bench.loadtest [--builds 50] [--latency 5] [--setups embedded,celery]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from sheen_pipeline.config import Settings
from sheen_pipeline.events.runtime import stored_events
from sheen_pipeline.events.types import EventType
from sheen_pipeline.models import new_build_id, parse_build_request
from sheen_pipeline.store.requests import RequestStore, new_request_id
from tests.conftest import REPO_ROOT
from tests.support.cluster import BIN, celery_worker, client_env, shared_services
from tests.support.fake_llm import AnthropicWire, FakeLLMServer, Recorded, Reply, six_tasks
from tests.support.processes import running, sheen, sheen_cli_env

# Each build asks for another shop (and the result cache is off), so every build makes its calls.
PROMPT = "a landing page for {shop} Coffee in Portland, with a signup form"


class SlowModel:
    """Answers with the six-task plan and its files, after `latency` seconds; counts calls in
    flight, sampled by the load test."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.in_flight = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, request: Recorded) -> Reply:
        with self._lock:
            self.in_flight += 1
            self.calls += 1
        try:
            time.sleep(self.latency)
            return six_tasks(request)
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass
class TreeUsage:
    """CPU seconds and peak resident memory of a process and its descendants."""

    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    _seen: dict[int, float] = field(default_factory=dict)

    def sample(self, root: psutil.Process) -> None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = 0.0
        for process in tree:
            try:
                times = process.cpu_times()
                self._seen[process.pid] = times.user + times.system
                rss += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.cpu_s = sum(self._seen.values())
        self.peak_rss_mb = max(self.peak_rss_mb, rss / 2**20)


@dataclass
class Observed:
    setup: str
    builds: int
    latency: float
    notes: str
    wall_s: float = 0.0
    succeeded: int = 0
    first_partial_s: list[float] = field(default_factory=list)
    preview_s: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    calls: int = 0
    trees: dict[str, TreeUsage] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        def pct(values: list[float], q: int) -> float | None:
            if len(values) < 2:
                return round(values[0], 1) if values else None
            return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)

        return {
            "setup": self.setup,
            "builds": self.builds,
            "succeeded": self.succeeded,
            "latency_s": self.latency,
            "wall_s": round(self.wall_s, 1),
            "builds_per_min": round(self.succeeded / self.wall_s * 60, 2) if self.wall_s else 0,
            "first_plan_partial_p50_s": pct(self.first_partial_s, 50),
            "first_plan_partial_p95_s": pct(self.first_partial_s, 95),
            "preview_p50_s": pct(self.preview_s, 50),
            "preview_p95_s": pct(self.preview_s, 95),
            "model_calls": self.calls,
            "calls_in_flight_max": max(self.in_flight, default=0),
            "calls_in_flight_mean": round(statistics.fmean(self.in_flight), 1)
            if self.in_flight
            else 0,
            "workers": {
                name: {"cpu_s": round(t.cpu_s, 1), "peak_rss_mb": round(t.peak_rss_mb)}
                for name, t in self.trees.items()
            },
            "notes": self.notes,
            "failures": sorted(set(self.failures))[:3],
        }


def _submit(env: dict[str, str], count: int) -> list[str]:
    store = RequestStore(Settings.from_env(env).database_url)
    build_ids = [new_build_id() for _ in range(count)]
    for number, build_id in enumerate(build_ids):
        request = parse_build_request(
            prompt=PROMPT.format(shop=f"Roaster {number} {build_id[-6:]}")
        )
        store.add(request, new_request_id(), build_id)
    return build_ids


def _ended(env: dict[str, str], build_ids: list[str]) -> int:
    log = stored_events(Settings.from_env(env))
    ends = (EventType.BUILD_COMPLETED, EventType.BUILD_FAILED, EventType.PLAN_BLOCKED)
    return sum(1 for b in build_ids if (last := log.last(b)) is not None and last.type in ends)


def _measure(
    observed: Observed,
    env: dict[str, str],
    model: SlowModel,
    trees: dict[str, psutil.Process],
    timeout_s: float,
) -> None:
    """Submit the builds, sample until every one has ended, then read their events."""
    started = time.time()
    build_ids = _submit(env, observed.builds)
    observed.trees = {name: TreeUsage() for name in trees}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        observed.in_flight.append(model.in_flight)
        for name, process in trees.items():
            observed.trees[name].sample(process)
        ended = _ended(env, build_ids)
        if len(observed.in_flight) % 15 == 0:
            print(f"  {observed.setup}: {ended}/{observed.builds} ended", file=sys.stderr)
        if ended == observed.builds:
            break
        time.sleep(1)
    observed.wall_s = time.time() - started
    observed.calls = model.calls
    log = stored_events(Settings.from_env(env))
    for build_id in build_ids:
        events = log.after(build_id, 0, 1000)
        partial = next((e for e in events if e.type is EventType.PLAN_PARTIAL), None)
        done = next((e for e in events if e.type is EventType.BUILD_COMPLETED), None)
        if partial is not None:
            observed.first_partial_s.append(partial.timestamp.timestamp() - started)
        if done is not None:
            observed.succeeded += 1
            observed.preview_s.append(done.timestamp.timestamp() - started)
        elif events and events[-1].type is EventType.BUILD_FAILED:
            observed.failures.append(str(events[-1].data["reason"])[:300])


def _model_env(server: FakeLLMServer, llm_pool: int, plan_pool: int) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": "sk-ant-loadtest",
        "ANTHROPIC_BASE_URL": server.base_url,
        "SHEEN_POOL_LLM_LIMIT": str(llm_pool),
        "SHEEN_POOL_PLAN_LIMIT": str(plan_pool),
        "SHEEN_PREVIEW_CHECKS": "off",
        "SHEEN_RESULT_CACHE_TTL_S": "0",  # every build makes its 7 calls
        "SHEEN_LLM_TIMEOUT_S": "300",
        "SHEEN_BUILD_TIMEOUT_S": "3600",
    }


DAEMON = [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]


@contextmanager
def _daemon(env: dict[str, str], log: Path) -> Iterator[psutil.Process]:
    assert sheen(env, "init").returncode == 0
    with running(DAEMON, env, log) as process:
        yield psutil.Process(process.pid)


def run_embedded(args: argparse.Namespace, root: Path) -> Observed:
    model = SlowModel(args.latency)
    observed = Observed(
        "embedded", args.builds, args.latency, "SQLite, repository dagster.yaml, async executor"
    )
    with FakeLLMServer(AnthropicWire(), default=model) as server:
        (root / "embedded").mkdir()
        env = sheen_cli_env(root / "embedded", **_model_env(server, args.llm_pool, args.plan_pool))
        shutil.copy(REPO_ROOT / "dagster.yaml", env["DAGSTER_HOME"])
        with _daemon(env, root / "embedded-daemon.log") as daemon:
            _measure(observed, env, model, {"daemon+runs": daemon}, args.timeout)
    return observed


def run_celery(args: argparse.Namespace, root: Path) -> Observed:
    os.environ.setdefault(
        "SHEEN_TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1/test"
    )
    os.environ.setdefault("SHEEN_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672")
    model = SlowModel(args.latency)
    notes = (
        f"Postgres, RabbitMQ, S3 (moto); {args.workers} workers x {args.concurrency} processes; "
        "deploy/celery/dagster.yaml"
    )
    observed = Observed("celery", args.builds, args.latency, notes)
    with (
        FakeLLMServer(AnthropicWire(), default=model) as server,
        shared_services(**_model_env(server, args.llm_pool, args.plan_pool)) as shared,
    ):
        celery_root = root / "celery"
        celery_root.mkdir()
        env = client_env(celery_root, shared)
        with ExitStack() as stack:
            trees = {}
            for n in range(args.workers):
                worker = stack.enter_context(
                    celery_worker(celery_root, f"worker-{n}", shared, args.concurrency)
                )
                trees[worker.name] = psutil.Process(worker.process.pid)
            trees["daemon+runs"] = stack.enter_context(_daemon(env, root / "celery-daemon.log"))
            _measure(observed, env, model, trees, args.timeout)
    return observed


def report(results: list[Observed]) -> None:
    figures = [r.figures() for r in results]
    rows = [
        ("builds (succeeded / submitted)", lambda f: f"{f['succeeded']} / {f['builds']}"),
        ("wall time", lambda f: f"{f['wall_s']} s"),
        ("builds per minute", lambda f: str(f["builds_per_min"])),
        (
            "first plan_partial p50 / p95",
            lambda f: f"{f['first_plan_partial_p50_s']} / {f['first_plan_partial_p95_s']} s",
        ),
        ("preview p50 / p95", lambda f: f"{f['preview_p50_s']} / {f['preview_p95_s']} s"),
        (
            "model calls in flight (max / mean)",
            lambda f: f"{f['calls_in_flight_max']} / {f['calls_in_flight_mean']}",
        ),
    ]
    print(
        f"| Load test ({results[0].builds} builds, 6 tasks, {results[0].latency} s per call) | "
        + " | ".join(f["setup"] for f in figures)
        + " |"
    )
    print("|---|" + "---|" * len(figures))
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(f) for f in figures) + " |")
    for f in figures:
        for name, usage in f["workers"].items():
            print(
                f"| {f['setup']}: {name} CPU / peak memory | {usage['cpu_s']} s / {usage['peak_rss_mb']} MB |"
            )
    print(json.dumps({"loadtest": figures}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=50)
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per model call")
    parser.add_argument("--setups", default="embedded,celery")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=4, help="processes per worker")
    parser.add_argument("--llm-pool", type=int, default=20, help="task calls in flight, at most")
    parser.add_argument("--plan-pool", type=int, default=10, help="plan calls in flight, at most")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sheen-loadtest-"))
    runners = {"embedded": run_embedded, "celery": run_celery}
    try:
        results = [runners[name](args, root) for name in args.setups.split(",")]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
