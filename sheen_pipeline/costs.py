"""What builds cost over a period, from the ledger: totals, by day, project, user and model, and
what the caches saved (prompt-cache reads priced at the full input price minus what was paid;
result-cache hits at what the original calls cost). The same figures feed the daily cost asset
and `sheen costs`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sheen_pipeline.config.prices import Price, price_of
from sheen_pipeline.providers.pricing import MILLION
from sheen_pipeline.store.builds import BuildStatus, BuildStore
from sheen_pipeline.store.ledger import Entry, Ledger

GROUPINGS: Mapping[str, Callable[[Entry], str]] = {
    "day": lambda e: e.at.date().isoformat() if e.at else "-",
    "project": lambda e: e.project_id,
    "user": lambda e: e.user_id,
    "model": lambda e: e.model,
}


@dataclass
class Figures:
    """Sums over ledger entries. `unpriced` counts entries whose cost is unknown (a model
    without a price): they are not in `cost_usd`."""

    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    prompt_cache_saved_usd: Decimal = Decimal(0)
    result_cache_saved_usd: Decimal = Decimal(0)
    failed_builds_usd: Decimal = Decimal(0)

    def add(self, entry: Entry, price: Price | None, build_failed: bool) -> None:
        usage = entry.usage
        if usage.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += usage.cost_usd
            if build_failed:
                self.failed_builds_usd += usage.cost_usd
        self.calls += usage.calls
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        if price is not None:
            self.prompt_cache_saved_usd += (
                usage.cache_read_tokens * (price.input - price.cache_read) / MILLION
            )
        self.result_cache_saved_usd += entry.saved_usd

    @property
    def saved_usd(self) -> Decimal:
        return self.prompt_cache_saved_usd + self.result_cache_saved_usd

    def as_json(self) -> dict[str, Any]:
        return {
            "cost_usd": str(self.cost_usd),
            "unpriced_entries": self.unpriced,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "failed_builds_usd": str(self.failed_builds_usd),
            "prompt_cache_saved_usd": str(self.prompt_cache_saved_usd),
            "result_cache_saved_usd": str(self.result_cache_saved_usd),
        }


COLUMNS = ("cost $", "calls", "input", "output", "cache read", "saved $")


def cells(figures: Figures) -> tuple[str, ...]:
    """One row of a cost table (COLUMNS), as the dashboard and `sheen costs` print it."""
    return (
        f"{figures.cost_usd:.4f}",
        str(figures.calls),
        str(figures.input_tokens),
        str(figures.output_tokens),
        str(figures.cache_read_tokens),
        f"{figures.saved_usd:.4f}",
    )


def by_cost(table: Mapping[str, Figures]) -> list[tuple[str, Figures]]:
    """The rows of one grouping, the most expensive first."""
    return sorted(table.items(), key=lambda item: (-item[1].cost_usd, item[0]))


@dataclass
class CostReport:
    since: datetime
    until: datetime
    totals: Figures = field(default_factory=Figures)
    groups: dict[str, dict[str, Figures]] = field(
        default_factory=lambda: {name: {} for name in GROUPINGS}
    )
    builds_succeeded: int = 0
    builds_failed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "totals": self.totals.as_json(),
            "builds": {"succeeded": self.builds_succeeded, "failed": self.builds_failed},
            **{
                f"by_{name}": {key: figures.as_json() for key, figures in sorted(table.items())}
                for name, table in self.groups.items()
            },
        }


def summarize(
    entries: Iterable[Entry],
    prices: Mapping[str, Price],
    failed_builds: AbstractSet[str],
    since: datetime,
    until: datetime,
) -> CostReport:
    report = CostReport(since, until)
    for entry in entries:
        price, failed = price_of(prices, entry.model), entry.build_id in failed_builds
        report.totals.add(entry, price, failed)
        for name, key_of in GROUPINGS.items():
            report.groups[name].setdefault(key_of(entry), Figures()).add(entry, price, failed)
    return report


def cost_report(
    ledger: Ledger,
    builds: BuildStore,
    prices: Mapping[str, Price],
    since: datetime,
    until: datetime,
) -> CostReport:
    """Every ledger entry in [since, until) (failed builds' calls included), and the builds
    that ended in it."""
    entries = ledger.entries(since, until)
    statuses = builds.statuses({entry.build_id for entry in entries})
    failed = {build_id for build_id, s in statuses.items() if s is BuildStatus.FAILED}
    report = summarize(entries, prices, failed, since, until)
    ended = builds.finished_between(since, until)
    report.builds_succeeded = ended.get(BuildStatus.SUCCEEDED, 0)
    report.builds_failed = ended.get(BuildStatus.FAILED, 0)
    return report
