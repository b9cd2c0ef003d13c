"""Prometheus metrics for operators, read from the shared app database at each scrape, so every
process that serves them (`sheen serve`, each worker) reports the same figures for the whole
deployment, whichever process did the work: builds by status, task and build durations, provider
calls and errors, task retries, tokens and cost, and the webhook queue."""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, case, func, select

from sheen_pipeline.events.types import EventType
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.tables import build_events, builds, provider_calls, webhook_deliveries

TASK_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
BUILD_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
LAG_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 300.0)
TIMED = (
    EventType.BUILD_STARTED,
    EventType.BUILD_COMPLETED,
    EventType.BUILD_FAILED,
    EventType.TASK_STARTED,
    EventType.TASK_COMPLETED,
    EventType.TASK_FAILED,
)
SCAN_BATCH = 5000


@dataclass
class Histogram:
    """Cumulative bucket counts, as Prometheus wants them (the last bucket is +Inf)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # one per bound, and +Inf

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.total)


class EventDurations:
    """Task and build durations (start event to end event) and task retries, taken from the
    event log incrementally: each scrape reads only the events stored since the last one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cursor = 0
        self.tasks = Histogram(TASK_BUCKETS)
        self.builds = Histogram(BUILD_BUCKETS)
        self.retries = 0
        self._task_started: dict[tuple[str, str], datetime] = {}
        self._build_started: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        with self._lock:
            while True:
                query = (
                    select(build_events)
                    .where(build_events.c.seq > self.cursor, build_events.c.type.in_(TIMED))
                    .order_by(build_events.c.seq)
                    .limit(SCAN_BATCH)
                )
                with self.engine.connect() as conn:
                    rows = conn.execute(query).all()
                for row in rows:
                    self._take(
                        row.build_id, EventType(row.type), _utc(row.created_at), row.data_json
                    )
                    self.cursor = row.seq
                if len(rows) < SCAN_BATCH:
                    return

    def _take(self, build_id: str, kind: EventType, at: datetime, data_json: str) -> None:
        if kind is EventType.BUILD_STARTED:
            self._build_started.setdefault(build_id, at)  # a re-execution continues the build
        elif kind in (EventType.BUILD_COMPLETED, EventType.BUILD_FAILED):
            started = self._build_started.pop(build_id, None)
            if started is not None:
                self.builds.observe((at - started).total_seconds())
        else:
            data = json.loads(data_json)
            key = (build_id, data["task_id"])
            if kind is EventType.TASK_STARTED:
                self._task_started[key] = at
                return
            started = self._task_started.pop(key, None)
            if started is not None:
                self.tasks.observe((at - started).total_seconds())
            if kind is EventType.TASK_FAILED and data.get("will_retry"):
                self.retries += 1


class StoreCollector(Collector):
    def __init__(self, database_url: str) -> None:
        self.engine = engine_for(database_url)
        self.durations = EventDurations(self.engine)

    def collect(self) -> Iterator[Metric]:
        self.durations.catch_up()
        with self.engine.connect() as conn:
            by_status = conn.execute(
                select(builds.c.status, func.count()).group_by(builds.c.status)
            ).all()
            calls = conn.execute(
                select(
                    provider_calls.c.provider,
                    provider_calls.c.model,
                    provider_calls.c.outcome,
                    func.sum(provider_calls.c.calls),
                    func.sum(provider_calls.c.input_tokens),
                    func.sum(provider_calls.c.output_tokens),
                    func.sum(provider_calls.c.cache_read_tokens),
                    func.sum(provider_calls.c.cache_write_tokens),
                    func.sum(provider_calls.c.cost_nusd),
                ).group_by(
                    provider_calls.c.provider, provider_calls.c.model, provider_calls.c.outcome
                )
            ).all()
            pending = webhook_deliveries.c.status == "pending"
            depth, oldest = conn.execute(
                select(func.count(), func.min(build_events.c.created_at))
                .select_from(webhook_deliveries.join(build_events))
                .where(pending)
            ).one()
            lag = webhook_lag_histogram(conn)

        status = GaugeMetricFamily("sheen_builds", "Builds by status", labels=["status"])
        for name, count in by_status:
            status.add_metric([name], count)
        yield status
        yield self.durations.tasks.family(
            "sheen_task_duration_seconds", "From a task's start to its end (completed or failed)"
        )
        yield self.durations.builds.family(
            "sheen_build_duration_seconds", "From a build's start to its end (completed or failed)"
        )
        yield CounterMetricFamily(
            "sheen_task_retries", "Task failures that were retried", value=self.durations.retries
        )
        yield from _ledger_families(calls)
        yield GaugeMetricFamily(
            "sheen_webhook_queue_depth", "Webhook deliveries waiting to be sent", value=depth
        )
        age = 0.0 if oldest is None else (datetime.now(UTC) - _utc(oldest)).total_seconds()
        yield GaugeMetricFamily(
            "sheen_webhook_oldest_pending_age_seconds",
            "Age of the oldest event whose webhook is still waiting (0 when none)",
            value=max(age, 0.0),
        )
        yield lag.family(
            "sheen_webhook_delivery_lag_seconds",
            "From an event being stored to its webhook's first 2xx",
        )


def webhook_lag_histogram(conn: Connection) -> Histogram:
    """Delivered events' lags, bucketed by the database (no row is read into the process)."""
    lag = webhook_deliveries.c.delivered_at - webhook_deliveries.c.queued_at
    *at_most, count, total = conn.execute(
        select(
            *(func.sum(case((lag <= bound, 1), else_=0)) for bound in LAG_BUCKETS),
            func.count(),
            func.sum(lag),
        ).where(
            webhook_deliveries.c.status == "delivered", webhook_deliveries.c.queued_at.is_not(None)
        )
    ).one()
    cumulative = [int(n or 0) for n in (*at_most, count)]
    histogram = Histogram(LAG_BUCKETS)
    histogram.counts = [
        n - below for n, below in zip(cumulative, [0, *cumulative[:-1]], strict=True)
    ]
    histogram.total = float(total or 0)  # Postgres sums to a Decimal
    return histogram


FAILED_OUTCOMES = ("error", "rejected")


def _ledger_families(rows: Sequence[Any]) -> Iterator[Metric]:
    """Provider calls by outcome (ok, rejected, error, cache_hit); the failed ones (an error, or
    an answer asked again) as errors; tokens by kind and cost, by model. Sums are converted as
    they come: Postgres hands them back as Decimals."""
    labels = ["provider", "model"]
    calls = CounterMetricFamily(
        "sheen_provider_calls", "Provider calls by outcome", labels=[*labels, "outcome"]
    )
    errors = CounterMetricFamily(
        "sheen_provider_errors",
        "Provider calls that failed or were answered unusably",
        labels=labels,
    )
    tokens = CounterMetricFamily("sheen_tokens", "Tokens used", labels=[*labels, "kind"])
    cost = CounterMetricFamily(
        "sheen_cost_usd", "What provider calls cost, in dollars", labels=labels
    )
    kinds = ("input", "output", "cache_read", "cache_write")
    totals: dict[tuple[str, str], list[float]] = {}
    failed: dict[tuple[str, str], float] = {}
    for provider, model, outcome, n, *counts, nusd in rows:
        who = (str(provider), str(model))
        calls.add_metric([*who, str(outcome)], float(n or 0))
        failed[who] = failed.get(who, 0.0) + (float(n or 0) if outcome in FAILED_OUTCOMES else 0)
        summed = totals.setdefault(who, [0.0] * (len(kinds) + 1))
        for index, value in enumerate((*counts, float(nusd or 0) / 1e9)):
            summed[index] += float(value or 0)
    for who, (*counts, dollars) in totals.items():
        errors.add_metric(list(who), failed[who])
        for kind, count in zip(kinds, counts, strict=True):
            tokens.add_metric([*who, kind], count)
        cost.add_metric(list(who), dollars)
    yield from (calls, errors, tokens, cost)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
