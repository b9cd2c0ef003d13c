"""The price table (USD per million tokens): the defaults, and SHEEN_PRICES read into them at
load, so a malformed table stops a process before it spends anything."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Cache writes (5-minute TTL) cost 1.25x input, reads 0.1x."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal

    @classmethod
    def from_input_output(cls, input_usd: str, output_usd: str) -> Price:
        base = Decimal(input_usd)
        return cls(base, Decimal(output_usd), base * Decimal("1.25"), base * Decimal("0.1"))


DEFAULT_PRICES: Mapping[str, Price] = {
    "claude-opus-5-5": Price.from_input_output("5", "25"),
    "claude-sonnet-5-5": Price.from_input_output("3", "15"),
    "claude-haiku-5-5": Price.from_input_output("1", "5"),
    "offline": Price(Decimal(0), Decimal(0), Decimal(0), Decimal(0)),
}


DATED_ID = re.compile(r"^(?P<family>.+)-\d{8}$")  # claude-sonnet-5-5-20261001


def price_of(prices: Mapping[str, Price], model: str) -> Price | None:
    """The model's own price, else its family's for a dated id (a snapshot of a model is priced
    as the model); None when neither is known."""
    if model in prices:
        return prices[model]
    dated = DATED_ID.match(model)
    return prices.get(dated["family"]) if dated else None


def load_prices(override: str) -> dict[str, Price]:
    """DEFAULT_PRICES updated from SHEEN_PRICES: inline JSON or a path to a JSON file, shaped
    {"model": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}. Raises
    ValueError saying what is wrong."""
    prices = dict(DEFAULT_PRICES)
    if not override.strip():
        return prices
    path = price_file(override)
    text = override if path is None else _read(path)
    try:
        table = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        for model, fields in table.items():
            input_usd = Decimal(fields["input"])
            prices[model] = Price(
                input=input_usd,
                output=Decimal(fields["output"]),
                cache_write=Decimal(fields.get("cache_write", input_usd * Decimal("1.25"))),
                cache_read=Decimal(fields.get("cache_read", input_usd * Decimal("0.1"))),
            )
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as error:
        raise ValueError(f"is not a valid price table: {error!r}") from None
    return prices


def price_file(override: str) -> str | None:
    """The file SHEEN_PRICES names, or None when it holds the table itself (or nothing)."""
    return None if not override.strip() or override.lstrip().startswith("{") else override


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ValueError(f"file cannot be read: {error}") from None
