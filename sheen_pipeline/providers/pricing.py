"""Exact cost: token usage at the price table's rates (config/prices.py, SHEEN_PRICES)."""

from __future__ import annotations

from decimal import Decimal

from sheen_pipeline.config.prices import Price
from sheen_pipeline.models import TokenUsage

MILLION = Decimal(1_000_000)


def priced(usage: TokenUsage, price: Price | None) -> TokenUsage:
    """The same usage with its exact cost, or cost None when the price (or the usage) is
    unknown."""
    if price is None or usage.cost_usd is None:
        return usage.model_copy(update={"cost_usd": None})
    cost = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / MILLION
    return usage.model_copy(update={"cost_usd": cost})
