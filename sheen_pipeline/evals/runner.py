"""Running a suite: each case through the normal pipeline (the `build` it is given makes every
build a real Dagster run with its checks, repair round and cost), then its hidden steps on the
preview in the confined browser. With a budget, the evaluation's builds are paid by a user of its
own whose day budget is it: a case is not started when its planning could not fit what is left,
and a build whose estimate does not fit is refused before its tasks spend anything."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sheen_pipeline.evals.report import CaseResult, EvalReport
from sheen_pipeline.evals.suite import EvalCase, Suite
from sheen_pipeline.events.types import EventType
from sheen_pipeline.models import BuildRequest
from sheen_pipeline.service import BuildService


@dataclass(frozen=True)
class Built:
    build_id: str
    status: str
    error: str | None = None


Builder = Callable[[BuildRequest], Built]


def new_eval_id() -> str:
    return "e" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)


def eval_user(eval_id: str) -> str:
    """Who pays an evaluation's builds: its budget, and its line in `sheen costs`."""
    return f"eval-{eval_id}"


def run_eval(
    service: BuildService,
    suite: Suite,
    build: Builder,
    eval_id: str,
    repeat: int = 1,
    budget_usd: Decimal | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> EvalReport:
    report = EvalReport(
        eval_id=eval_id,
        suite=suite.name,
        provider=service.provider.name,
        model=service.provider.model,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        budget_usd=None if budget_usd is None else str(budget_usd),
    )
    runs = [(case, attempt) for case in suite.cases for attempt in range(1, repeat + 1)]
    for number, (case, attempt) in enumerate(runs, start=1):
        request = case.request.model_copy(
            update={"user_id": eval_user(eval_id), "project_id": "evals"}
        )
        if budget_usd is not None and _would_not_fit(service, request):
            report.not_run.extend(
                f"{c.id}#{a}" if repeat > 1 else c.id for c, a in runs[number - 1 :]
            )
            progress(f"[{number}/{len(runs)}] budget reached: {len(report.not_run)} not run")
            break
        progress(f"[{number}/{len(runs)}] {case.id}: building")
        result = _judged(service, case, attempt, build(request))
        report.cases.append(result)
        verdict = "passed" if result.passed else f"failed ({result.failed_step})"
        progress(f"[{number}/{len(runs)}] {case.id}: {verdict}")
    return report


def _would_not_fit(service: BuildService, request: BuildRequest) -> bool:
    planning = service.provider.estimate_plan_usd(request)
    return service.budgets.over(request.project_id, request.user_id, planning) is not None


def _judged(service: BuildService, case: EvalCase, attempt: int, built: Built) -> CaseResult:
    events = service.events.after(built.build_id, 0, 10_000)
    started = next((e.timestamp for e in events if e.type is EventType.BUILD_STARTED), None)
    done = next((e.timestamp for e in events if e.type is EventType.BUILD_COMPLETED), None)
    usage = service.store.get_build(built.build_id).usage
    if built.status == "succeeded":
        used = service.use_preview(built.build_id, case.steps)
        passed = len(used.details.get("passed_steps", []))
        failed = None if used.passed else used.message
    else:
        passed, failed = 0, f"no preview: the build {built.status}: {built.error}"
    return CaseResult(
        case_id=case.id,
        attempt=attempt,
        build_id=built.build_id,
        build_status=built.status,
        steps_total=len(case.steps),
        steps_passed=passed,
        failed_step=failed,
        repairs=sum(e.type is EventType.REPAIR_STARTED for e in events),
        cost_usd=str(usage.cost_usd if usage.cost_usd is not None else Decimal(0)),
        seconds_to_preview=(
            round((done - started).total_seconds(), 2) if started and done else None
        ),
    )
