"""The build's independent tasks run at the same time on the async executor, bounded by
SHEEN_MAX_PARALLEL_TASKS and by the `llm` pool, proven with barriers, not clocks."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from dagster import DagsterInstance

from tests.support.builds import build
from tests.support.processes import sheen_cli_env, sheen_here
from tests.support.providers import max_in_flight

SHAPED = "tests.support.providers:ShapedProbeProvider"
POOLED_INSTANCE = "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    granularity: op\n"


def shaped_build(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, shape: str, **env: str
) -> str:
    for name, value in {
        "SHEEN_TEST_PROVIDER": SHAPED,
        "SHEEN_TEST_PLAN_SHAPE": shape,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    outcome, _ = build(instance, prompt=f"a site shaped {shape}")
    assert outcome.status == "succeeded", outcome.error
    return outcome.build_id


def test_independent_tasks_are_in_flight_together(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each call waits until 3 calls are in flight: one task at a time would fail the build.
    shaped_build(
        instance, monkeypatch, "levels:1x3", SHEEN_TEST_BARRIER="3", SHEEN_TEST_TASK_SLEEP_S="0.2"
    )
    assert max_in_flight(sheen_home) == 3


def test_max_parallel_tasks_bounds_a_build(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shaped_build(
        instance,
        monkeypatch,
        "levels:1x4",
        SHEEN_MAX_PARALLEL_TASKS="1",
        SHEEN_TEST_TASK_SLEEP_S="0.2",
    )
    assert max_in_flight(sheen_home) == 1


def test_a_pool_limit_below_the_ready_tasks_finishes_within_the_limit(tmp_path: Path) -> None:
    env = sheen_cli_env(
        tmp_path,
        SHEEN_TEST_PROVIDER=SHAPED,
        SHEEN_TEST_PLAN_SHAPE="levels:1x6",
        SHEEN_TEST_TASK_SLEEP_S="0.3",
        SHEEN_POOL_LLM_LIMIT="2",
    )
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(POOLED_INSTANCE)
    result = sheen_here(env, "build", "six ready tasks, two pool slots", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "succeeded"
    assert max_in_flight(Path(env["SHEEN_HOME"])) == 2


def test_the_executor_fix_is_checked_again_when_dagster_async_executor_changes() -> None:
    """defs/executor.py works around a hang of dagster-async-executor 0.0.4 by wrapping private
    parts of it (docs/upstream/dagster-async-executor-pool-claims.md): a new release may fix the
    hang or move those parts, so a version change must be looked at, not picked up silently."""
    assert version("dagster-async-executor") == "0.0.4", (
        "dagster-async-executor changed: re-check defs/executor.py against it (see "
        "docs/upstream/dagster-async-executor-pool-claims.md), then update this version"
    )
