"""The sample request, one way to run a whole build in a test, and stored plans without builds."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import DagsterInstance

from sheen_pipeline.config import Settings
from sheen_pipeline.models import BuildRequest, Plan, parse_build_request
from sheen_pipeline.providers.base import PlanDraft
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.runs.local import BuildOutcome, run_build
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStore
from sheen_pipeline.store.files import BuildFiles, Stage

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


def deployed_page(
    build_id: str, path: str = "index.html", env: Mapping[str, str] | None = None
) -> str:
    """A file of a build's deployed site, as the preview server reads it: from the artifact
    store of the environment's settings (the current process's unless env is given)."""
    settings = Settings.from_env(env)
    files = BuildFiles.open(settings.database_url, settings.artifact_store)
    found = files.find(build_id, Stage.DIST, path)
    assert found is not None, f"build {build_id} has no deployed {path}"
    return files.read(found).decode("utf-8")
