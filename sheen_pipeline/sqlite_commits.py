"""SQLite databases in WAL mode (Dagster's embedded run and event storage set it) commit without
waiting for the disk (`synchronous=NORMAL`): Dagster commits once per event, and the steps of a
build, which share one event loop, would otherwise wait on a disk flush for every one. In WAL mode this keeps the database
consistent; a power cut may lose the last moments of events, never corrupt them. Postgres is
untouched."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _commit_without_flushing(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    (mode,) = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
    if mode == "wal":
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
