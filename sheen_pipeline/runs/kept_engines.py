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
import threading

from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

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
        path = self.engine.url.database
        try:
            stat = os.stat(path) if path else None
        except FileNotFoundError:
            return None
        return (stat.st_dev, stat.st_ino) if stat else None

    def on_current_file(self) -> Engine:
        """The engine, its kept connections dropped first when the file was deleted or replaced
        since they were opened: they would go on using the old file unseen."""
        now = self.file()
        if now != self._opened_file:
            self.engine.dispose()
            self._opened_file = now
        return self.engine


_KEPT: dict[str, KeptEngine] = {}
_kept_lock = threading.Lock()


def kept_engine(conn_string: str) -> KeptEngine:
    """This process's engine for the SQLite file of conn_string, made on first use."""
    with _kept_lock:
        kept = _KEPT.get(conn_string)
        if kept is None:
            _close_engines_of_deleted_files()
            kept = _KEPT[conn_string] = KeptEngine(conn_string)
        return kept


def _close_engines_of_deleted_files() -> None:
    for conn_string, kept in list(_KEPT.items()):
        if kept.file() is None:
            kept.engine.dispose()
            del _KEPT[conn_string]


def _forget_inherited_connections() -> None:
    """In a forked child: the parent's connections are dropped, never used nor closed here. The
    lock is made anew: another thread may have held it at the fork."""
    global _kept_lock
    _kept_lock = threading.Lock()
    for kept in _KEPT.values():
        kept.engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)
