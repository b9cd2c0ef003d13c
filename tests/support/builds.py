"""The sample request, one way to run a whole build in a test, and stored plans without builds."""

from __future__ import annotations

from dagster import DagsterInstance

from sheen_pipeline.models import BuildRequest, Plan, parse_build_request
from sheen_pipeline.providers.base import PlanDraft
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.runs.local import BuildOutcome, run_build
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStore

PROMPT = "a landing page for Blue Fern Coffee in Portland, with a signup form"


def build(
    instance: DagsterInstance, service: BuildService | None = None, **fields: str | None
) -> tuple[BuildOutcome, list[str]]:
    """Plan, build and deploy PROMPT (or fields' prompt) as `sheen build` does, on the service
    of the current environment unless one is given; returns the outcome and progress lines."""
    lines: list[str] = []
    given = {name: value for name, value in fields.items() if value is not None}
    request = parse_build_request(**{"prompt": PROMPT, **given})
    outcome = run_build(instance, service or BuildService.from_env(), request, lines.append)
    return outcome, lines


def store_offline_plans(store: BuildStore, build_ids: list[str]) -> None:
    request = BuildRequest(prompt=PROMPT)
    *_, draft = OfflineProvider().stream_plan(request)
    assert isinstance(draft, PlanDraft)
    for build_id in build_ids:
        store.create_build(build_id, request)
        store.save_plan(
            Plan(build_id=build_id, request=request, summary=draft.summary, tasks=draft.tasks)
        )
