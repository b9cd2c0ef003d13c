"""What an evaluation found: per case, its build and its hidden steps; for the suite, the pass
rate (cases whose every hidden step passed), the step pass rate, cost per passing app, time to
preview, and how often a repair round ran and made the case pass. Domain data only: the CLI
prints it, the eval job records it as asset metadata, both from the same JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    attempt: int  # 1.. --repeat
    build_id: str
    build_status: str
    steps_total: int
    steps_passed: int
    failed_step: str | None  # "step 3 of 5 failed: click 'Add': …", or why none ran
    repairs: int
    cost_usd: str  # exact, as the ledger has it ("0" for the offline provider)
    seconds_to_preview: float | None  # None: no preview

    @property
    def passed(self) -> bool:
        return self.steps_total > 0 and self.steps_passed == self.steps_total


@dataclass(frozen=True)
class EvalReport:
    eval_id: str
    suite: str
    provider: str
    model: str
    started_at: str
    cases: list[CaseResult] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # cases the budget left out
    budget_usd: str | None = None

    def totals(self) -> dict[str, Any]:
        """The suite's figures (numbers, for plotting); None where there is nothing to measure."""
        cases = self.cases
        passing = [c for c in cases if c.passed]
        times = sorted(c.seconds_to_preview for c in cases if c.seconds_to_preview is not None)
        repaired = [c for c in cases if c.repairs]
        cost = sum((Decimal(c.cost_usd) for c in cases), Decimal(0))
        steps = sum(c.steps_total for c in cases)
        return {
            "cases_run": len(cases),
            "cases_passed": len(passing),
            "cases_not_run": len(self.not_run),
            "pass_rate": _ratio(len(passing), len(cases)),
            "step_pass_rate": _ratio(sum(c.steps_passed for c in cases), steps),
            "cost_usd": float(cost),
            "cost_per_passing_app_usd": float(cost / len(passing)) if passing else None,
            "p50_seconds_to_preview": _percentile(times, 50),
            "p95_seconds_to_preview": _percentile(times, 95),
            "repair_rate": _ratio(len(repaired), len(cases)),
            "repair_fix_rate": _ratio(sum(c.passed for c in repaired), len(repaired)),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "cases"},
            "cases": [{**asdict(c), "passed": c.passed} for c in self.cases],
            "totals": self.totals(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalReport:
        fields = {k: v for k, v in data.items() if k not in ("cases", "totals")}
        cases = [CaseResult(**{k: v for k, v in c.items() if k != "passed"}) for c in data["cases"]]
        return cls(**fields, cases=cases)

    def table(self) -> str:
        """Per case, then the totals, as markdown (the terminal and the UI show the same)."""
        lines = [
            "| case | steps passed | build | repairs | cost (USD) | to preview (s) |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.cases:
            name = c.case_id if c.attempt == 1 else f"{c.case_id} #{c.attempt}"
            seconds = "-" if c.seconds_to_preview is None else f"{c.seconds_to_preview:.1f}"
            lines.append(
                f"| {name} | {c.steps_passed}/{c.steps_total} | {c.build_status} | {c.repairs} "
                f"| {Decimal(c.cost_usd):.6f} | {seconds} |"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        t = self.totals()
        per_app = t["cost_per_passing_app_usd"]
        lines = [
            f"{t['cases_passed']} of {t['cases_run']} cases passed ({_percent(t['pass_rate'])}); "
            f"steps {_percent(t['step_pass_rate'])}",
            f"cost ${t['cost_usd']:.6f}; per passing app "
            + ("-" if per_app is None else f"${per_app:.6f}"),
            f"time to preview p50 {_seconds(t['p50_seconds_to_preview'])}, "
            f"p95 {_seconds(t['p95_seconds_to_preview'])}",
            f"repairs in {_percent(t['repair_rate'])} of cases, fixing "
            f"{_percent(t['repair_fix_rate'])} of them",
        ]
        if self.not_run:
            lines.append(
                f"{len(self.not_run)} cases not run: the next would not fit the ${self.budget_usd}"
                f" budget ({', '.join(self.not_run)})"
            )
        return "\n".join(lines)


def compare(before: EvalReport, after: EvalReport) -> list[str]:
    """The cases whose outcome changed from one run to the other (first attempts)."""
    first = {c.case_id: c for c in before.cases if c.attempt == 1}
    changed = []
    for case in (c for c in after.cases if c.attempt == 1):
        earlier = first.get(case.case_id)
        if earlier is None:
            changed.append(f"{case.case_id}: new ({_outcome(case)})")
        elif earlier.passed != case.passed or earlier.steps_passed != case.steps_passed:
            changed.append(f"{case.case_id}: {_outcome(earlier)} -> {_outcome(case)}")
    return changed


def _outcome(case: CaseResult) -> str:
    state = "passed" if case.passed else "failed"
    return f"{state} {case.steps_passed}/{case.steps_total}"


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentile(ordered: list[float], percent: int) -> float | None:
    if not ordered:
        return None
    if len(ordered) == 1:
        return round(ordered[0], 2)
    return round(statistics.quantiles(ordered, n=100, method="inclusive")[percent - 1], 2)


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.0%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
