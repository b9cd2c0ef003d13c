"""No build stays "building" forever: a killed process, a canceled run and a lost heartbeat all
end the build failed with the reason, and followers of its events stop with it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    RunsFilter,
    SkipReason,
    build_run_status_sensor_context,
    build_sensor_context,
    job,
    op,
)

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.sensors import canceled_run_sensor, stalled_build_sensor
from sheen_pipeline.models import parse_build_request
from sheen_pipeline.runs.tags import BUILD_ID
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus, BuildStore
from tests.support.builds import build
from tests.support.processes import SHEEN, instance_of, running, sheen, sheen_cli_env
from tests.support.sensors import resources
from tests.support.waiting import wait_for


@op
def nothing() -> None:
    pass


@job
def noop() -> None:
    nothing()


def beating(settings: Settings, status: str = "building") -> str | None:
    """The build whose process beats a heartbeat, in that status."""
    with BuildStore(settings.database_url).engine.connect() as conn:
        query = "select build_id from builds where heartbeat_at > 0 and status = ?"
        return conn.exec_driver_sql(query, (status,)).scalar()


def test_a_killed_cli_build_ends_failed_and_its_follower_stops(tmp_path: Path) -> None:
    env = sheen_cli_env(
        tmp_path,
        SHEEN_TEST_PROVIDER="tests.support.providers:GatedOfflineProvider",
        SHEEN_TEST_GATE_TASK="index_page",
        SHEEN_BUILD_HEARTBEAT_TIMEOUT_S="3",
    )
    settings = Settings.from_env(env)
    with running([SHEEN, "build", "a site for a bakery"], env, tmp_path / "build.log") as cli:
        build_id = wait_for(lambda: beating(settings), 60, "the build to be running")
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(10)
    store = BuildStore(settings.database_url)
    assert store.get_build(build_id).status is BuildStatus.BUILDING  # nobody has noticed yet

    followed = sheen(env, "events", build_id, "--follow", "--json")  # ends; never hangs
    assert followed.returncode == 0, followed.stderr
    last = json.loads(followed.stdout.splitlines()[-1])
    assert last["type"] == "build_failed" and "no heartbeat since" in last["data"]["reason"]
    record = store.get_build(build_id)
    assert record.status is BuildStatus.FAILED and "stopped" in (record.error or "")
    with instance_of(env) as instance:
        runs = instance.get_runs(RunsFilter(tags={BUILD_ID: build_id}))
        statuses = sorted(run.status.value for run in runs)
        assert statuses == [
            "FAILURE",
            "SUCCESS",
        ]  # the plan ran; the build run failed, as in the UI


def test_the_daemon_ends_a_build_whose_heartbeat_stopped(
    service: BuildService, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(instance, service)
    assert beating(service.settings, "succeeded") is None  # its heartbeat ended with its run

    monkeypatch.setenv("SHEEN_BUILD_HEARTBEAT_TIMEOUT_S", "5")
    request = parse_build_request(prompt="a site")
    for build_id, last_beat in (("bdead", time.time() - 60), ("balive", time.time())):
        service.store.create_build(build_id, request)
        service.store.start_run(build_id, f"run-of-{build_id}")
        service.store.beat(build_id, last_beat)
    with build_sensor_context(instance=instance, resources=resources()) as context:
        result = stalled_build_sensor(context)
    assert isinstance(result, SkipReason)
    assert result.skip_message == "ended 1 stalled builds: bdead"
    assert service.store.get_build("bdead").status is BuildStatus.FAILED
    assert service.store.get_build("balive").status is BuildStatus.BUILDING
    assert service.events.last("bdead").type == "build_failed"  # type: ignore[union-attr]


def test_a_canceled_run_fails_its_build(service: BuildService, instance: DagsterInstance) -> None:
    service.store.create_build("bcancel", parse_build_request(prompt="a site"))
    run = instance.create_run_for_job(job_def=noop, tags={BUILD_ID: "bcancel"})
    instance.report_run_canceled(run)
    canceled = instance.get_run_by_id(run.run_id)
    assert canceled is not None
    (event,) = [
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(run.run_id).records
        if record.event_log_entry.dagster_event is not None
        and record.event_log_entry.dagster_event.event_type == DagsterEventType.RUN_CANCELED
    ]
    with build_run_status_sensor_context(
        sensor_name=canceled_run_sensor.name,
        dagster_instance=instance,
        dagster_run=canceled,
        dagster_event=event,
        resources=resources(),
    ) as context:
        canceled_run_sensor(context)
    record = service.store.get_build("bcancel")
    assert record.status is BuildStatus.FAILED and "was canceled" in (record.error or "")
