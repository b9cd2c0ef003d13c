"""The embedded instance's event log: Dagster's consolidated SQLite storage (every run's events in
one file), writing through one SQLAlchemy engine instead of a new engine per event.

Why: a build stores about a hundred Dagster events. Dagster's SQLite storages create an engine
for every connection, so every insert is compiled again (the compiled-statement cache lives on
the engine) and the engine's set-up is paid again; that was about a fifth of the CPU of a build
executed in one process. The engine keeps `NullPool`, as Dagster's does: each write still opens
and closes its own SQLite connection, so writers in other processes and forked run workers see
the same file as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool


class SqliteEventLog(ConsolidatedSqliteEventLogStorage):
    """`event_log_storage` of dagster.yaml and of a Dagster home the CLI makes (config:
    `base_dir`)."""

    @cached_property
    def _engine(self) -> Engine:
        return create_engine(
            self._conn_string,
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn
