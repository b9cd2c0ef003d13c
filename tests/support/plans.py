"""Stored plans without running builds: copies of one offline plan under new build ids."""

from __future__ import annotations

from sheen_pipeline.models import BuildRequest, Plan
from sheen_pipeline.providers.base import PlanDraft
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.store.builds import BuildStore

PROMPT = "a landing page for Blue Fern Coffee in Portland, with a signup form"


def store_offline_plans(store: BuildStore, build_ids: list[str]) -> None:
    request = BuildRequest(prompt=PROMPT)
    *_, draft = OfflineProvider().stream_plan(request)
    assert isinstance(draft, PlanDraft)
    for build_id in build_ids:
        store.create_build(build_id, request)
        store.save_plan(
            Plan(build_id=build_id, request=request, summary=draft.summary, tasks=draft.tasks)
        )
