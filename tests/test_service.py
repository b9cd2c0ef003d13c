"""The build service on its own, without Dagster: its steps, in order, with a provider handed in."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import networkx as nx
import pytest
from dagster import DagsterInstance

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.defs.resources import BuildServiceResource
from sheen_pipeline.defs.settings import SettingsResource
from sheen_pipeline.events.types import EventType
from sheen_pipeline.models import Plan, Task, TaskResult, TokenUsage, parse_build_request
from sheen_pipeline.providers.base import GeneratedFiles, ProviderError
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.service import BuildService, Deployment
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.files import Stage
from tests.support.builds import PROMPT

PAID = TokenUsage(input_tokens=100, output_tokens=20, cost_usd=Decimal("0.0006"))


class RefusingProvider(OfflineProvider):
    """Plans like the offline provider; every task call fails after it was paid for."""

    name = "refusing"

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        raise ProviderError("the model refused", usage=PAID)


def _types(service: BuildService, build_id: str) -> list[EventType]:
    return [event.type for event in service.events.after(build_id)]


def _run_tasks(service: BuildService, plan: Plan) -> list[TaskResult]:
    """Each task after its dependencies, handing each its upstream results, as the job does."""
    graph = nx.DiGraph((dep, t.id) for t in plan.tasks for dep in t.input.dependencies)
    graph.add_nodes_from(t.id for t in plan.tasks)
    results: dict[str, TaskResult] = {}
    for task_id in nx.topological_sort(graph):
        upstream = [results[dep] for dep in plan.task(task_id).input.dependencies]
        results[task_id] = asyncio.run(service.run_task(plan, task_id, upstream))
    return list(results.values())


def test_a_whole_build_through_the_service(sheen_home: Path) -> None:
    service = BuildService(Settings.from_env(), provider=OfflineProvider())
    plan = service.plan("bsvc1", parse_build_request(prompt=PROMPT)).plan
    deployment = _deploy_and_end(service, plan)

    assert service.store.get_build("bsvc1").status is BuildStatus.SUCCEEDED
    assert service.files.find("bsvc1", Stage.DIST, "index.html") is not None
    assert deployment.preview_url.endswith("/p/bsvc1/")
    types = _types(service, "bsvc1")
    assert types[:2] == [EventType.BUILD_STARTED, EventType.PLAN_PARTIAL]
    assert types.count(EventType.TASK_COMPLETED) == len(plan.tasks)
    assert types[-5:] == [
        EventType.BUILD_STEP_STARTED,
        EventType.DEPLOY_STARTED,
        EventType.DEPLOY_COMPLETED,
        EventType.PREVIEW_CHECKED,
        EventType.BUILD_COMPLETED,
    ]


def test_a_failed_call_fails_its_task_and_is_billed(sheen_home: Path) -> None:
    service = BuildService(Settings.from_env(), provider=RefusingProvider())
    plan = service.plan("bsvc2", parse_build_request(prompt=PROMPT)).plan
    first = next(t for t in plan.tasks if not t.input.dependencies)
    with pytest.raises(ProviderError, match="refused"):
        asyncio.run(service.run_task(plan, first.id, []))
    spent = service.fail("bsvc2", "task failed")

    assert spent == PAID
    failed = [e for e in service.events.after("bsvc2") if e.type is EventType.TASK_FAILED]
    assert [e.data["task_id"] for e in failed] == [first.id]
    assert _types(service, "bsvc2")[-1] is EventType.BUILD_FAILED
    assert service.store.get_build("bsvc2").status is BuildStatus.FAILED


def test_ops_use_the_provider_a_test_hands_in_as_a_resource(
    sheen_home: Path, instance: DagsterInstance
) -> None:
    result = plan_build.execute_in_process(
        run_config={
            "ops": {
                "validate_request": {"config": {"prompt": PROMPT, "build_id": "bsvc3"}},
                "launch_build": {"config": {"submit": False}},
            }
        },
        instance=instance,
        resources={
            "sheen": BuildServiceResource(settings=SettingsResource(), provider=RefusingProvider())
        },
    )
    assert result.success
    plan = BuildService.from_env().store.get_plan("bsvc3")
    assert plan is not None and plan.provider == "refusing"


class PricedOfflineProvider(OfflineProvider):
    """The offline templates, each task billed one cent."""

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        files = self.render_files(task, plan, context_files)
        return GeneratedFiles(files.files, TokenUsage(cost_usd=Decimal("0.01"), calls=1))


def _deploy_and_end(service: BuildService, plan: Plan) -> Deployment:
    """Build, deploy, check (off in tests: not run) and end, as the build job's steps do."""
    summary = service.build_site(plan, _run_tasks(service, plan))
    deployed = service.deploy_preview(plan)
    return service.complete(plan, summary, deployed, service.check_preview(plan))


def _whole_build(service: BuildService, build_id: str, project_id: str) -> Deployment:
    request = parse_build_request(prompt=PROMPT, project_id=project_id)
    return _deploy_and_end(service, service.plan(build_id, request).plan)


def test_a_build_five_times_its_projects_median_is_an_anomaly(
    sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_RESULT_CACHE_TTL_S", "0")  # both builds pay for every task
    service = BuildService(Settings.from_env(), provider=PricedOfflineProvider())
    cheap = TokenUsage(cost_usd=Decimal("0.01"), calls=1)
    for number in range(3):
        service.store.create_build(f"bold{number}", parse_build_request(prompt="x", project_id="p"))
        service.store.set_status(f"bold{number}", BuildStatus.SUCCEEDED, usage=cheap)
    usual = _whole_build(service, "busual", "q")  # no history in project q: nothing to compare
    costly = _whole_build(service, "bcostly", "p")  # five tasks at a cent: 5x the median

    assert usual.anomaly is None
    assert costly.anomaly is not None
    assert (costly.anomaly.cost_usd, costly.anomaly.median_usd) == (
        Decimal("0.05"),
        Decimal("0.01"),
    )
    anomalies = [e for e in service.events.after("bcostly") if e.type is EventType.COST_ANOMALY]
    assert [e.data["median_usd"] for e in anomalies] == ["0.01"]
    assert _types(service, "busual").count(EventType.COST_ANOMALY) == 0


def test_a_failed_build_far_over_the_median_is_an_anomaly_and_free_rebuilds_do_not_count(
    sheen_home: Path,
) -> None:
    service = BuildService(Settings.from_env(), provider=PricedOfflineProvider())
    costs = ["0.01", "0.01", "0.01", "0", "0", "0"]  # three paid builds, three $0 cache hits
    for number, cost in enumerate(costs):
        service.store.create_build(
            f"bpast{number}", parse_build_request(prompt="x", project_id="p")
        )
        usage = TokenUsage(cost_usd=Decimal(cost), calls=1)
        service.store.set_status(f"bpast{number}", BuildStatus.SUCCEEDED, usage=usage)
    service.store.create_build("bdear", parse_build_request(prompt="x", project_id="p"))
    service.store.add_usage("bdear", TokenUsage(cost_usd=Decimal("0.083"), calls=5))
    service.fail("bdear", "preview checks failed")
    (anomaly,) = [e for e in service.events.after("bdear") if e.type is EventType.COST_ANOMALY]
    assert anomaly.data["median_usd"] == "0.01"  # not pulled down by the $0 rebuilds
    assert anomaly.data["builds_compared"] == 3
