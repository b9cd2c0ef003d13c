"""The embedded instance's run and schedule storage: Dagster's SQLite storages, each writing
through one SQLAlchemy engine instead of a new engine per connection.

Why: Dagster's SQLite storages create an engine for every connection, so every statement is
compiled again (the compiled-statement cache lives on the engine) and the engine's set-up is paid
again. Runs are read and written on every step of a build, and schedule storage on every sensor
tick. Their config names the Dagster home (`dagster_home`); the files stay where Dagster's
defaults put them (`history/runs.db`, `schedules/schedules.db`).

The engines keep their SQLite connections between transactions (Dagster's use `NullPool`): a
build writes about a hundred events, each in a transaction of its own, and opening a connection
(the file, its schema, the WAL pragmas) and closing it was about a tenth of the CPU of a build
run in one process. Each transaction still sees what other processes committed. There is one
engine per file and process, shared by every instance's storages (`kept_engines.py`).

A database set up once in this process is not set up again: Dagster makes an instance, and so
these storages, for every sensor tick and every run, and each set-up loaded every alembic
migration script to find the newest revision (70 % of making an instance; half a code server's
CPU while it only evaluates sensors). A file deleted since is set up again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any, ClassVar

from dagster._config import StringSource
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

from sheen_pipeline.runs.kept_engines import kept_engine


class OneEngine:
    """A Dagster SQLite storage (its `_conn_string`) writing through this process's one engine for
    its file. What its schema is known to have is remembered: Dagster asks again on every run
    event and every step (a table or column is only ever added, by a migration, never taken
    away)."""

    _conn_string: str

    @property
    def _one_engine(self) -> Engine:
        return kept_engine(self._conn_string).engine

    @contextmanager
    def _one_transaction(self) -> Iterator[Connection]:
        engine = kept_engine(self._conn_string).on_current_file()
        with engine.connect() as conn, conn.begin():
            yield conn

    @cached_property
    def _known(self) -> set[str]:
        return set()

    def _once_true(self, name: str, ask: Callable[[], bool]) -> bool:
        """ask(), until it once answers True: from then on, True without asking."""
        if name not in self._known and ask():
            self._known.add(name)
        return name in self._known


_SET_UP: set[str] = set()  # the database files this process has set up (and migrated)


class InDagsterHome(OneEngine):
    """A run or schedule storage configured by the Dagster home (`dagster_home`), its file in
    the folder Dagster's default puts it in, and its connections made by one engine."""

    folder: ClassVar[tuple[str, ...]]
    database: ClassVar[str]
    from_local: ClassVar[Callable[..., Any]]

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Any:
        base_dir = os.path.join(config_value["dagster_home"], *cls.folder)
        path = os.path.join(base_dir, f"{cls.database}.db")
        if path in _SET_UP and os.path.exists(path):
            return cls(create_db_conn_string(base_dir, cls.database), inst_data)  # type: ignore[call-arg]
        storage = cls.from_local(base_dir, inst_data=inst_data)
        _SET_UP.add(path)
        return storage

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._one_transaction() as conn:
            yield conn


class SqliteRuns(InDagsterHome, SqliteRunStorage):
    """`run_storage` of dagster.yaml and of a Dagster home the CLI makes."""

    folder = ("history", "")
    database = "runs"

    def has_run_stats_index_cols(self) -> bool:
        return self._once_true("run stats", super().has_run_stats_index_cols)


class SqliteSchedules(InDagsterHome, SqliteScheduleStorage):
    """`schedule_storage` of dagster.yaml and of a Dagster home the CLI makes."""

    folder = ("schedules",)
    database = "schedules"
