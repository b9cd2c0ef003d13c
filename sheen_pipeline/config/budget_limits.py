"""SHEEN_BUDGETS, read at load: limits in USD per user and per project, per day and per month.

    {"default": {"user": {"day": 5}, "project": {"month": 100}},
     "users": {"ann": {"day": 1}}, "projects": {"coffee": {"day": 20}}}

A user or project named under "users"/"projects" has those limits instead of the default ones.
`"allow_unpriced": true` lets calls to a model without a price through, counted as $0 (by
default they are refused for an owner with a budget: their cost cannot be bounded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

SCOPES = ("user", "project")
PERIODS = ("day", "month")
KEYS = {"default", "users", "projects", "allow_unpriced"}


@dataclass(frozen=True)
class Budget:
    scope: str  # user | project
    owner: str
    period: str  # day | month
    limit_usd: Decimal

    @property
    def name(self) -> str:
        return f"{self.scope} {self.owner} per {self.period}"

    def period_start(self, now: datetime) -> datetime:
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return day if self.period == "day" else day.replace(day=1)


@dataclass(frozen=True)
class Budgets:
    default: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    specific: Mapping[str, Mapping[str, Mapping[str, Decimal]]] = field(default_factory=dict)
    allow_unpriced: bool = False  # calls to a model without a price pass, counted as $0

    def for_owner(self, project_id: str, user_id: str) -> list[Budget]:
        found = []
        for scope, owner in (("user", user_id), ("project", project_id)):
            limits = self.specific.get(scope, {}).get(owner, self.default.get(scope, {}))
            found += [Budget(scope, owner, period, limit) for period, limit in limits.items()]
        return found

    def __bool__(self) -> bool:
        return bool(self.default or self.specific)


def _limits(value: object, where: str) -> dict[str, Decimal]:
    if not isinstance(value, dict) or not set(value) <= set(PERIODS):
        raise ValueError(f"{where} must map 'day' and/or 'month' to USD")
    try:
        limits = {period: Decimal(str(limit)) for period, limit in value.items()}
    except ArithmeticError:
        raise ValueError(f"{where} has a limit that is not a number") from None
    if any(not limit.is_finite() or limit < 0 for limit in limits.values()):
        raise ValueError(f"{where} has a negative limit")
    return limits


def load_budgets(text: str) -> Budgets:
    """Parse SHEEN_BUDGETS; raises ValueError naming what is wrong."""
    if not text.strip():
        return Budgets()
    try:
        table = json.loads(text)
    except ValueError as error:
        raise ValueError(f"is not JSON: {error}") from None
    if not isinstance(table, dict) or not set(table) <= KEYS:
        raise ValueError("must use the keys 'default', 'users', 'projects' and 'allow_unpriced'")
    allow_unpriced = table.get("allow_unpriced", False)
    if not isinstance(allow_unpriced, bool):
        raise ValueError("'allow_unpriced' must be true or false")
    default = table.get("default", {})
    if not isinstance(default, dict) or not set(default) <= set(SCOPES):
        raise ValueError("'default' must map 'user' and/or 'project' to limits")
    specific: dict[str, dict[str, dict[str, Decimal]]] = {}
    for scope in SCOPES:
        owners = table.get(f"{scope}s", {})
        if not isinstance(owners, dict):
            raise ValueError(f"'{scope}s' must map ids to limits")
        specific[scope] = {owner: _limits(v, f"{scope} {owner}") for owner, v in owners.items()}
    limits = {s: _limits(v, f"default {s}") for s, v in default.items()}
    return Budgets(limits, specific, allow_unpriced)
