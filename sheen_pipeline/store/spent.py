"""What a build's ledger entries add up to: whenever its calls were metered, its total is this
sum (a call paid by a worker killed before its step reported included), whatever its steps
counted."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, func, select

from sheen_pipeline.models import TokenUsage
from sheen_pipeline.store.tables import provider_calls

NANO = Decimal(1_000_000_000)  # exact amounts are kept in nano-dollars


def to_nano(usd: Decimal) -> int:
    return int((usd * NANO).to_integral_value())


def from_nano(nusd: int) -> Decimal:
    return Decimal(nusd) / NANO


def ledger_usage(conn: Connection, build_id: str) -> TokenUsage | None:
    """None when the build has no entry (its provider is not metered); the cost is None when
    any entry's is (an unpriced model)."""
    c = provider_calls.c
    row = conn.execute(
        select(
            func.count(),
            func.count(c.cost_nusd),
            func.coalesce(func.sum(c.calls), 0),
            func.coalesce(func.sum(c.input_tokens), 0),
            func.coalesce(func.sum(c.output_tokens), 0),
            func.coalesce(func.sum(c.cache_read_tokens), 0),
            func.coalesce(func.sum(c.cache_write_tokens), 0),
            func.coalesce(func.sum(c.cost_nusd), 0),
        ).where(c.build_id == build_id)
    ).one()
    entries, priced, calls, given, taken, read, written, nusd = row
    if not entries:
        return None
    return TokenUsage(
        input_tokens=int(given),
        output_tokens=int(taken),
        cache_read_tokens=int(read),
        cache_write_tokens=int(written),
        cost_usd=from_nano(int(nusd)) if priced == entries else None,
        calls=int(calls),
    )
