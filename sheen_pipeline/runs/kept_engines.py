"""One SQLAlchemy engine per Dagster SQLite file and process, its connections kept between
transactions and between the instances Dagster makes (one per sensor tick and per run).

Why one per file rather than one per storage object: the instances Dagster makes (a code server
makes one per sensor tick) then reuse the kept connections instead of opening their own, which
halves what an instance costs; and no engine is left to the collector with connections open.
Dagster never disposes an instance's schedule storage, and SQLite cannot release a file's
descriptor while another connection of the same process still holds that file (WAL mode keeps a
shared lock on it): a process reading the schedule storage of instance after instance, each
disposed, held 81 descriptors on `schedules.db` after 5000 of them.

A forked child drops the connections it inherited without closing them (they are the parent's);
a file deleted or replaced since its connections opened is opened anew, never written to unseen;
the engines of deleted files are closed when the next engine is made.
"""

from __future__ import annotations

import os

from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from sheen_pipeline.store.engines import ProcessEngines

FileId = tuple[int, int]  # (device, inode)


class KeptEngine:
    """An engine that keeps two connections to one SQLite file, and knows which file they opened."""

    def __init__(self, conn_string: str) -> None:
        self.engine = create_engine(
            conn_string,
            poolclass=QueuePool,
            pool_size=2,
            max_overflow=-1,  # as many at once as Dagster's NullPool allowed; two kept
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        self._opened_file: FileId | None = None

    def file(self) -> FileId | None:
        try:
            stat = os.stat(self.engine.url.database or "")
        except FileNotFoundError:
            return None
        return (stat.st_dev, stat.st_ino)

    def on_current_file(self) -> Engine:
        """The engine, its kept connections dropped first when the file was deleted or replaced
        since they were opened: they would go on using the old file unseen."""
        now = self.file()
        if now != self._opened_file:
            self.engine.dispose()
            self._opened_file = now
        return self.engine


_KEPT: ProcessEngines[KeptEngine] = ProcessEngines(lambda kept: kept.engine)


def kept_engine(conn_string: str) -> KeptEngine:
    """This process's engine for the SQLite file of conn_string, made on first use."""

    def make() -> KeptEngine:
        _close_engines_of_deleted_files()
        return KeptEngine(conn_string)

    return _KEPT.get(conn_string, make)


def _close_engines_of_deleted_files() -> None:
    """Holding `_KEPT`'s lock."""
    for conn_string, kept in list(_KEPT.by_key.items()):
        if kept.file() is None:
            kept.engine.dispose()
            del _KEPT.by_key[conn_string]
