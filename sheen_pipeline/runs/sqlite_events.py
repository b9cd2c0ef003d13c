"""The embedded instance's event log: Dagster's consolidated SQLite storage (every run's events in
one file), writing through one SQLAlchemy engine instead of a new engine per event.

Why: a build stores about a hundred Dagster events, and Dagster's SQLite storages create an
engine for every connection (see sqlite_storage.py); that was about a fifth of the CPU of a
build executed in one process. Its own module, as dagster.yaml files name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from sqlalchemy.engine import Connection

from sheen_pipeline.runs.sqlite_storage import OneEngine


class SqliteEventLog(OneEngine, ConsolidatedSqliteEventLogStorage):
    """`event_log_storage` of dagster.yaml and of a Dagster home the CLI makes (config:
    `base_dir`)."""

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._one_transaction() as conn:
            yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster's asks through a new engine each time (per step: the pools' tables)."""

        def ask() -> bool:
            with self._one_engine.connect() as conn:
                return bool(self._one_engine.dialect.has_table(conn, table_name))

        return self._once_true(f"table {table_name}", ask)
