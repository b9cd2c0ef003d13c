"""dagster.yaml's storages: every run's events in one SQLite file, and runs, events and schedules
each written through one engine that keeps its connections, read back by another instance as
another process would; a forked child or a replaced file never meets a kept connection."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, instance_for_test, job, op
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage
from sqlalchemy import Engine, event

from sheen_pipeline.cli.app import STANDALONE_INSTANCE_CONFIG
from sheen_pipeline.runs.sqlite_events import SqliteEventLog
from sheen_pipeline.runs.sqlite_storage import SqliteRuns, SqliteSchedules
from tests.conftest import PROJECT_INSTANCE, STORAGES, project_storage
from tests.support.processes import in_forked_child

FILES = ("event_log.db", "runs.db", "schedules.db")


@op
def say_hello() -> str:
    return "hello"


@job
def hello_job() -> None:
    say_hello()


def test_runs_events_and_schedules_are_each_written_through_one_engine(tmp_path: Path) -> None:
    engines: dict[str, list[Engine]] = {name: [] for name in FILES}
    opened: Counter[str] = Counter()  # SQLite connections opened, by file

    def on_connect(conn: object) -> None:
        engine = conn.engine  # type: ignore[attr-defined]
        for name in FILES:
            if str(engine.url).endswith(name):
                engines[name].append(engine)

    def on_open(dbapi: Any, _record: object) -> None:
        opened[Path(dbapi.execute("PRAGMA database_list").fetchone()[2]).name] += 1

    event.listen(Engine, "engine_connect", on_connect)
    event.listen(Engine, "connect", on_open)
    try:
        with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
            assert isinstance(instance.event_log_storage, SqliteEventLog)
            assert isinstance(instance.run_storage, SqliteRuns)
            assert isinstance(instance.schedule_storage, SqliteSchedules)
            for made in engines.values():
                made.clear()  # each storage's set-up made its file with an engine of its own
            result = hello_job.execute_in_process(instance=instance)
            for _ in range(3):
                instance.schedule_storage.all_instigator_state()
            written = len(instance.all_logs(result.run_id))
            opened.clear()  # the set-ups' own engines, and the first connections
            result = hello_job.execute_in_process(instance=instance)
            written_again = len(instance.all_logs(result.run_id))
    finally:
        event.remove(Engine, "engine_connect", on_connect)
        event.remove(Engine, "connect", on_open)
    assert result.success and written >= 5
    assert len(engines["event_log.db"]) >= written + written_again  # a transaction per write
    assert len(engines["runs.db"]) >= 3 and len(engines["schedules.db"]) >= 3
    assert sum(opened.values()) <= 2, opened  # the second run's writes: on kept connections
    distinct = Counter({name: len({id(e) for e in made}) for name, made in engines.items()})
    assert distinct == Counter(dict.fromkeys(FILES, 1))
    with DagsterInstance.from_ref(instance.get_ref()) as reader:  # another process's view
        assert len(reader.all_logs(result.run_id)) == written
        run = reader.get_run_by_id(result.run_id)
        assert run is not None and run.is_success


def test_a_dagster_home_outside_a_checkout_stores_as_dagster_yaml_does() -> None:
    standalone = yaml.safe_load(STANDALONE_INSTANCE_CONFIG)
    assert {name: standalone[name] for name in STORAGES} == {
        name: PROJECT_INSTANCE[name] for name in STORAGES
    }


def test_runs_and_schedules_stay_where_dagsters_defaults_put_them(tmp_path: Path) -> None:
    with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
        hello_job.execute_in_process(instance=instance)
    assert (tmp_path / "history" / "runs.db").is_file()
    assert (tmp_path / "schedules" / "schedules.db").is_file()


def test_what_the_schema_is_known_to_have_is_not_asked_again(tmp_path: Path) -> None:
    """Dagster asks on every run event and step whether a table or column exists; a yes is
    remembered (migrations only add), a no is asked again."""
    connections: list[str] = []

    def on_connect(conn: object) -> None:
        connections.append(str(conn.engine.url))  # type: ignore[attr-defined]

    with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
        events, runs = instance.event_log_storage, instance.run_storage
        assert isinstance(events, SqliteEventLog) and isinstance(runs, SqliteRuns)
        event.listen(Engine, "engine_connect", on_connect)
        try:
            asked = [events.has_table("concurrency_limits") for _ in range(3)]
            asked += [runs.has_run_stats_index_cols() for _ in range(3)]
            yes = len(connections)
            missing = [events.has_table("no_such_table") for _ in range(2)]
        finally:
            event.remove(Engine, "engine_connect", on_connect)
    assert asked == [True] * 6 and yes <= 2  # at most the first of each kind asks
    assert missing == [False, False] and len(connections) == yes + 2


def test_a_database_set_up_once_in_a_process_is_not_set_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster makes an instance for every sensor tick and run; each set-up of its run and
    schedule storage loaded every migration script. Once per file and process, unless the file
    was deleted since."""
    checked: list[str] = []
    for module in (sqlite_run_storage, sqlite_schedule_storage):
        check = module.check_alembic_revision

        def counted(config: Any, conn: Any, check: Any = check, module: Any = module) -> Any:
            checked.append(module.__name__.rsplit(".", 1)[-1])
            return check(config, conn)

        monkeypatch.setattr(module, "check_alembic_revision", counted)
    with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
        assert sorted(checked) == ["sqlite_run_storage", "sqlite_schedule_storage"]
        for _ in range(3):
            with DagsterInstance.from_ref(instance.get_ref()) as again:
                assert again.get_runs() == [] and again.all_instigator_state() == []
        assert len(checked) == 2
        (tmp_path / "history" / "runs.db").unlink()
        with DagsterInstance.from_ref(instance.get_ref()) as after_delete:
            assert after_delete.get_runs() == []  # the file and its tables are back
        assert sorted(checked) == ["sqlite_run_storage"] * 2 + ["sqlite_schedule_storage"]


def test_a_forked_child_opens_its_own_connections(tmp_path: Path) -> None:
    """A connection used on both sides of a fork corrupts both: the child drops the ones it
    inherited, unclosed, and opens its own."""
    with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
        runs = instance.run_storage
        assert isinstance(runs, SqliteRuns)
        assert instance.get_runs() == []
        assert runs._one_engine.pool.checkedin() >= 1  # kept in the parent

        def use_the_storage() -> str:
            inherited = runs._one_engine.pool.checkedin()
            hello_job.execute_in_process(instance=instance)
            return f"{inherited} {len(instance.get_runs())}"

        answer = in_forked_child(use_the_storage)
        assert answer == "0 1", answer
        assert len(instance.get_runs()) == 1  # the parent's kept connection still works


def test_a_replaced_database_file_is_opened_anew(tmp_path: Path) -> None:
    """Kept connections stay on the file they opened: once it is deleted and made again (by
    another instance's set-up), writes go to the new file, never to the deleted one."""
    with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
        assert instance.get_runs() == []
        (tmp_path / "history" / "runs.db").unlink()
        with DagsterInstance.from_ref(instance.get_ref()) as other:
            assert other.get_runs() == []  # set up again
            result = hello_job.execute_in_process(instance=instance)
            assert [run.run_id for run in other.get_runs()] == [result.run_id]


def open_files_under(folder: Path) -> list[str]:
    """The files under folder that this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(folder)):
            found.append(Path(target.removesuffix(" (deleted)")).name)
    return found


def test_instances_made_one_after_another_share_each_files_connections(tmp_path: Path) -> None:
    """A code server makes an instance for every sensor tick, and Dagster never disposes its
    schedule storage: the ticks' instances write through the connections kept for each file, so
    the process opens none per tick and holds a bounded number of descriptors."""
    opened: Counter[str] = Counter()

    def on_open(dbapi: Any, _record: object) -> None:
        opened[Path(dbapi.execute("PRAGMA database_list").fetchone()[2]).name] += 1

    with instance_for_test(project_storage(tmp_path), temp_dir=str(tmp_path)) as instance:
        hello_job.execute_in_process(instance=instance)
        event.listen(Engine, "connect", on_open)
        try:
            for _ in range(30):
                with DagsterInstance.from_ref(instance.get_ref()) as tick:
                    assert len(tick.get_runs()) == 1 and tick.all_instigator_state() == []
        finally:
            event.remove(Engine, "connect", on_open)
        held = Counter(open_files_under(tmp_path))
    assert sum(opened.values()) == 0, opened
    assert held["runs.db"] <= 2 and held["schedules.db"] <= 2, held


def test_the_connections_of_a_deleted_dagster_home_are_closed(tmp_path: Path) -> None:
    """Kept connections to files deleted with their Dagster home (a test's, a removed
    `.dagster/`) are closed once another file's engine is made, not held until the process
    ends."""
    gone, kept = tmp_path / "gone", tmp_path / "kept"
    gone.mkdir()
    with instance_for_test(project_storage(gone), temp_dir=str(gone)) as instance:
        hello_job.execute_in_process(instance=instance)
        assert instance.all_instigator_state() == []
        assert "schedules.db" in open_files_under(gone)
    shutil.rmtree(gone)
    kept.mkdir()
    with instance_for_test(project_storage(kept), temp_dir=str(kept)) as instance:
        assert instance.get_runs() == [] and instance.all_instigator_state() == []
        assert open_files_under(gone) == []
