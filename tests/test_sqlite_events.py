"""dagster.yaml's event log storage: every run's events in one SQLite file, written through one
engine (each write on a connection of its own, as Dagster's storage opens them)."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import DagsterInstance, instance_for_test, job, op
from sqlalchemy import Engine, event

from sheen_pipeline.cli.app import STANDALONE_INSTANCE_CONFIG
from sheen_pipeline.runs.sqlite_events import SqliteEventLog
from tests.conftest import PROJECT_INSTANCE, project_event_log


@op
def say_hello() -> str:
    return "hello"


@job
def hello_job() -> None:
    say_hello()


def test_a_runs_events_are_written_through_one_engine_and_read_back_by_another_instance(
    tmp_path: Path,
) -> None:
    engines: list[Engine] = []

    def on_connect(conn: object) -> None:
        engine = conn.engine  # type: ignore[attr-defined]
        if str(engine.url).endswith("event_log.db"):
            engines.append(engine)

    event.listen(Engine, "engine_connect", on_connect)
    try:
        with instance_for_test(project_event_log(tmp_path), temp_dir=str(tmp_path)) as instance:
            assert isinstance(instance.event_log_storage, SqliteEventLog)
            engines.clear()  # the storage's set-up made its file with an engine of its own
            result = hello_job.execute_in_process(instance=instance)
            written = len(instance.all_logs(result.run_id))
    finally:
        event.remove(Engine, "engine_connect", on_connect)
    assert result.success and written >= 5
    assert len(engines) >= written  # a connection per write, none kept open
    assert len({id(engine) for engine in engines}) == 1
    with DagsterInstance.from_ref(instance.get_ref()) as reader:  # another process's view
        assert len(reader.all_logs(result.run_id)) == written


def test_a_dagster_home_outside_a_checkout_stores_events_as_dagster_yaml_does() -> None:
    standalone = yaml.safe_load(STANDALONE_INSTANCE_CONFIG)
    assert standalone["event_log_storage"] == PROJECT_INSTANCE["event_log_storage"]
