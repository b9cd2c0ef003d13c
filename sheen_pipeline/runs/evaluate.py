"""An evaluation run from the CLI or the eval job: the suite's cases built here, each as its
plan and build runs on the instance (as `sheen build` does), with the model, provider and budget
asked for set on the environment those runs read their settings from, for the evaluation only."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from dagster import DagsterInstance

from sheen_pipeline.config import Settings
from sheen_pipeline.evals.report import EvalReport
from sheen_pipeline.evals.runner import Built, eval_user, new_eval_id, run_eval
from sheen_pipeline.evals.saved import SUITES_DIR, save_report
from sheen_pipeline.evals.suite import load_suite, suite_path
from sheen_pipeline.models import BuildRequest
from sheen_pipeline.runs.local import run_build
from sheen_pipeline.service import BuildService


@dataclass(frozen=True)
class EvalOrder:
    """What to evaluate: a suite (by name or file), optionally on another model or provider,
    a subset of its cases, each run `repeat` times, within a budget in USD."""

    suite: str = "core"
    model: str = ""
    provider: str = ""
    cases: tuple[str, ...] = ()
    repeat: int = 1
    budget_usd: Decimal | None = None


def evaluate(
    instance: DagsterInstance, order: EvalOrder, progress: Callable[[str], None]
) -> EvalReport:
    """Run the order's cases and keep the report (SHEEN_HOME/evals/<eval_id>.json)."""
    suite = load_suite(suite_path(order.suite, SUITES_DIR))
    if order.cases:
        suite = suite.only(list(order.cases))
    eval_id = new_eval_id()
    with _environment(_overrides(order, eval_id)):
        service = BuildService(Settings.from_env())

        def build(request: BuildRequest) -> Built:
            outcome = run_build(instance, service, request, lambda _line: None)
            return Built(outcome.build_id, outcome.status, outcome.error)

        report = run_eval(service, suite, build, eval_id, order.repeat, order.budget_usd, progress)
    save_report(service.settings.home, report)
    return report


def _overrides(order: EvalOrder, eval_id: str) -> dict[str, str]:
    overrides = {}
    if order.model:
        overrides["SHEEN_MODEL"] = order.model
    if order.provider:
        overrides["SHEEN_PROVIDER"] = order.provider
    if order.budget_usd is not None:
        budgets = json.loads(os.environ.get("SHEEN_BUDGETS") or "{}")
        users = {**budgets.get("users", {}), eval_user(eval_id): {"day": str(order.budget_usd)}}
        overrides["SHEEN_BUDGETS"] = json.dumps({**budgets, "users": users})
    return overrides


@contextmanager
def _environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """The variables set while the block runs, as they were afterwards."""
    before = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
