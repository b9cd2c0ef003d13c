"""Benchmark: what a flaky webhook receiver sees of a real `sheen build` (the spec's retry
schedule, every other setting at its default): the lag from each event being stored to its
first 2xx (p50, p95, max), and how long after the build's last event the last one arrived. Three
receivers: one failing 30 % of requests at random, one failing every event's first attempt, and
the latter again with the background deliverer SIGKILLed as soon as the build's command exits
(a `sheen webhooks deliver` started after the kill takes over). Every event must arrive, none
dead.

    .venv/bin/python -m tests.bench.webhooks
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sheen_pipeline.config import Settings
from sheen_pipeline.events.runtime import HAND_OVER_PID_FILE, dispatcher_for, stored_events
from tests.support.processes import SHEEN, running, sheen, sheen_cli_env
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for
from tests.support.webhooks import SECRET

PROMPT = "a landing page for Blue Fern Coffee in Portland, with a signup form and a menu"
FAILURE_SHARE = 0.3


class Arrivals:
    """When each webhook-id was first answered 2xx, by a receiver failing as `fails` says."""

    def __init__(self, fails: Callable[[str], bool]) -> None:
        self.fails = fails
        self.first_ok: dict[str, float] = {}
        self.stored_at: dict[str, float] = {}
        self.receiver: Receiver | None = None
        self.lock = threading.Lock()

    def __call__(self, number: int) -> int:
        assert self.receiver is not None
        record = self.receiver.received[number - 1]
        webhook_id = record.headers["webhook-id"]
        if self.fails(webhook_id):
            return 500
        with self.lock:
            if webhook_id not in self.first_ok:
                self.first_ok[webhook_id] = time.time()
                stamp = json.loads(record.body)["timestamp"]
                self.stored_at[webhook_id] = datetime.fromisoformat(stamp).timestamp()
        return 200


def random_failures(seed: int) -> Callable[[str], bool]:
    chooser = random.Random(seed)
    return lambda _id: chooser.random() < FAILURE_SHARE


def first_attempts_fail() -> Callable[[str], bool]:
    tried: set[str] = set()

    def fails(webhook_id: str) -> bool:
        first = webhook_id not in tried
        tried.add(webhook_id)
        return first

    return fails


def run_case(name: str, fails: Callable[[str], bool], kill_deliverer: bool) -> dict[str, Any]:
    arrivals = Arrivals(fails)
    with tempfile.TemporaryDirectory(prefix="sheen-bench-") as tmp, Receiver(arrivals) as receiver:
        arrivals.receiver = receiver
        env = sheen_cli_env(
            Path(tmp),
            SHEEN_WEBHOOK_URL=receiver.url,
            SHEEN_WEBHOOK_SECRET=SECRET,
            SHEEN_PREVIEW_CHECKS="on",
        )
        settings = Settings.from_env(env)
        result = sheen(env, "build", PROMPT, "--json")
        assert result.returncode == 0, result.stderr
        build_id = json.loads(result.stdout.splitlines()[-1])["build_id"]
        outbox = dispatcher_for(settings).outbox
        if kill_deliverer:
            pid_file = settings.home / HAND_OVER_PID_FILE
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            with running([SHEEN, "webhooks", "deliver"], env, Path(tmp) / "deliverer.log"):
                wait_for(lambda: outbox.counts().get("pending", 0) == 0, 300, "every event")
        else:
            wait_for(lambda: outbox.counts().get("pending", 0) == 0, 300, "every event")
        events = stored_events(settings).after(build_id)
        counts = outbox.counts()
    lags = sorted(arrivals.first_ok[i] - arrivals.stored_at[i] for i in arrivals.first_ok)
    last_stored = max(e.timestamp.timestamp() for e in events)
    return {
        "receiver": name,
        "events": len(events),
        "arrived": len(arrivals.first_ok),
        "dead": counts.get("dead", 0),
        "requests": len(receiver.received),
        "p50_s": round(statistics.median(lags), 2),
        "p95_s": round(statistics.quantiles(lags, n=20, method="inclusive")[18], 2),
        "max_s": round(lags[-1], 2),
        "after_build_s": round(max(arrivals.first_ok.values()) - last_stored, 2),
    }


def main() -> None:
    rows = [
        run_case("30 % of requests fail", random_failures(seed=7), kill_deliverer=False),
        run_case("every first attempt fails", first_attempts_fail(), kill_deliverer=False),
        run_case("first attempts fail, deliverer killed", first_attempts_fail(), True),
    ]
    print(
        "| receiver | events | arrived | dead | requests | lag p50 | p95 | max | last, after the build |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['receiver']} | {r['events']} | {r['arrived']} | {r['dead']} | {r['requests']} "
            f"| {r['p50_s']} s | {r['p95_s']} s | {r['max_s']} s | {r['after_build_s']} s |"
        )
    print(json.dumps({"benchmark": "webhooks", "cases": rows}))


if __name__ == "__main__":
    main()
