"""The ledger: one row per priced piece of work (a plan, a task's calls, a failed call, a
result-cache hit) with who it was for, so costs can be summed by day, project, user and model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import insert, select

from sheen_pipeline.models import TokenUsage
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.spent import from_nano, ledger_usage, to_nano
from sheen_pipeline.store.tables import provider_calls


@dataclass(frozen=True)
class Entry:
    """What one piece of work cost, and for whom. `saved_usd` is what a result-cache hit would
    have cost (the original calls)."""

    build_id: str
    project_id: str
    user_id: str
    provider: str
    model: str
    kind: str  # plan | task
    outcome: str  # ok | rejected | error | cache_hit
    usage: TokenUsage
    task_id: str | None = None
    saved_usd: Decimal = Decimal(0)
    at: datetime | None = None


def ledger_row(entry: Entry) -> dict[str, object]:
    usage = entry.usage
    return {
        "build_id": entry.build_id,
        "project_id": entry.project_id,
        "user_id": entry.user_id,
        "provider": entry.provider,
        "model": entry.model,
        "kind": entry.kind,
        "task_id": entry.task_id,
        "outcome": entry.outcome,
        "calls": usage.calls,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cost_nusd": None if usage.cost_usd is None else to_nano(usage.cost_usd),
        "saved_nusd": to_nano(entry.saved_usd),
        "created_at": entry.at or datetime.now(UTC),
    }


class Ledger:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def record(self, entry: Entry) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(provider_calls).values(**ledger_row(entry)))

    def usage_of(self, build_id: str) -> TokenUsage | None:
        with self.engine.connect() as conn:
            return ledger_usage(conn, build_id)

    def entries(self, since: datetime, until: datetime) -> list[Entry]:
        """Entries recorded in [since, until), oldest first."""
        query = (
            select(provider_calls)
            .where(provider_calls.c.created_at >= since, provider_calls.c.created_at < until)
            .order_by(provider_calls.c.seq)
        )
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]


def _entry(row: object) -> Entry:
    values = row._mapping  # type: ignore[attr-defined]
    cost = values["cost_nusd"]
    usage = TokenUsage(
        input_tokens=values["input_tokens"],
        output_tokens=values["output_tokens"],
        cache_read_tokens=values["cache_read_tokens"],
        cache_write_tokens=values["cache_write_tokens"],
        cost_usd=None if cost is None else from_nano(cost),
        calls=values["calls"],
    )
    at = values["created_at"]
    return Entry(
        build_id=values["build_id"],
        project_id=values["project_id"],
        user_id=values["user_id"],
        provider=values["provider"],
        model=values["model"],
        kind=values["kind"],
        outcome=values["outcome"],
        usage=usage,
        task_id=values["task_id"],
        saved_usd=from_nano(values["saved_nusd"]),
        at=at if at.tzinfo else at.replace(tzinfo=UTC),
    )
