"""Results stored by fingerprint, so identical work is never paid for twice: a task's files
(by type, input, target, upstream file hashes, provider and model) and a request's plan."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.models import AcceptanceStep, BuildRequest, Task, TaskResult
from sheen_pipeline.store.tables import result_cache

Worker = tuple[str, str]  # (provider name, model): who did the work


def _digest(value: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def task_fingerprint(
    task: Task, upstream: Sequence[TaskResult], worker: Worker, base: str | None = None
) -> str:
    """`base`: the digest of the source files a change starts from (None from scratch)."""
    return _digest(
        {
            "kind": "task",
            "base": base,
            "type": task.type.value,
            "input": task.input.model_dump(mode="json"),  # prompt, context, target path, deps
            "upstream": sorted((a.path, a.sha256) for r in upstream for a in r.files),
            "provider": worker[0],
            "model": worker[1],
        }
    )


def plan_fingerprint(request: BuildRequest, worker: Worker, base: str | None = None) -> str:
    return _digest(
        {
            "kind": "plan",
            "base": base,
            "prompt": request.prompt,
            "framework": request.framework,
            "provider": worker[0],
            "model": worker[1],
        }
    )


class ResultCache:
    """Expiring entries in the app database, shared by every process."""

    def __init__(self, engine: Engine, ttl_s: int) -> None:
        self.engine = engine
        self.ttl_s = ttl_s

    def get(self, fingerprint: str, now: float | None = None) -> dict[str, Any] | None:
        current = time.time() if now is None else now
        query = select(result_cache.c.payload_json).where(
            result_cache.c.fingerprint == fingerprint, result_cache.c.expires_at > current
        )
        with self.engine.connect() as conn:
            raw = conn.execute(query).scalar_one_or_none()
        return None if raw is None else json.loads(raw)

    def put(self, fingerprint: str, payload: Mapping[str, Any], now: float | None = None) -> None:
        """Store (or refresh) a result; a TTL of 0 turns the cache off."""
        if self.ttl_s <= 0:
            return
        current = time.time() if now is None else now
        row = {
            "fingerprint": fingerprint,
            "payload_json": json.dumps(payload),
            "created_at": current,
            "expires_at": current + self.ttl_s,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(result_cache).where(result_cache.c.fingerprint == fingerprint))
                conn.execute(insert(result_cache).values(**row))
        except IntegrityError:
            pass  # another build stored the same result at the same moment

    def evict_expired(self, now: float | None = None) -> int:
        current = time.time() if now is None else now
        with self.engine.begin() as conn:
            result = conn.execute(delete(result_cache).where(result_cache.c.expires_at <= current))
        return result.rowcount

    def get_plan(
        self, request: BuildRequest, worker: Worker, base: str | None = None
    ) -> tuple[str, tuple[Task, ...], tuple[AcceptanceStep, ...], Decimal] | None:
        """The summary and tasks of the plan made for an identical request (same prompt and
        framework, same provider and model, a base with the same files), and what making it
        cost; or None."""
        cached = self.get(plan_fingerprint(request, worker, base))
        if cached is None:
            return None
        tasks = tuple(Task.model_validate(t) for t in cached["tasks"])
        steps = tuple(AcceptanceStep.model_validate(s) for s in cached.get("acceptance", ()))
        return cached["summary"], tasks, steps, _cost(cached)

    def put_plan(
        self,
        request: BuildRequest,
        worker: Worker,
        summary: str,
        tasks: Sequence[Task],
        cost_usd: Decimal | None,
        base: str | None = None,
        acceptance: Sequence[AcceptanceStep] = (),
    ) -> None:
        payload = {
            "summary": summary,
            "tasks": [task.model_dump(mode="json") for task in tasks],
            "acceptance": [step.model_dump(mode="json") for step in acceptance],
            "cost_usd": None if cost_usd is None else str(cost_usd),
        }
        self.put(plan_fingerprint(request, worker, base), payload)

    def get_files(
        self, task: Task, upstream: Sequence[TaskResult], worker: Worker, base: str | None = None
    ) -> tuple[dict[str, str], Decimal] | None:
        """The files an identical task (same input, upstream files and base) generated, and
        what generating them cost; or None."""
        cached = self.get(task_fingerprint(task, upstream, worker, base))
        return None if cached is None else (dict(cached["files"]), _cost(cached))

    def put_files(
        self,
        task: Task,
        upstream: Sequence[TaskResult],
        worker: Worker,
        files: Mapping[str, str],
        cost_usd: Decimal | None,
        base: str | None = None,
    ) -> None:
        payload = {"files": dict(files), "cost_usd": None if cost_usd is None else str(cost_usd)}
        self.put(task_fingerprint(task, upstream, worker, base), payload)


def _cost(cached: Mapping[str, Any]) -> Decimal:
    """What the cached work cost when it was made (0 when unknown or not recorded)."""
    return Decimal(cached.get("cost_usd") or 0)
