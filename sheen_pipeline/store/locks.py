"""Locks across processes on the app database: SQLite has no advisory locks, so a lock file next
to the database stands in for one; Postgres uses transaction-scoped advisory locks."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine


@contextmanager
def file_lock(engine: Engine, name: str) -> Iterator[None]:
    """Held until the block ends, by one process at a time, for a SQLite file database; a no-op
    for other databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.{name}-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def advisory_lock(conn: Connection, name: str) -> None:
    """On Postgres, held until the connection's transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({zlib.crc32(name.encode())})")


@contextmanager
def held(engine: Engine, name: str) -> Iterator[Connection]:
    """`name` held by one process at a time until the block ends, on either database; the
    connection's transaction (which holds Postgres's advisory lock) is the block's to use."""
    with file_lock(engine, name), engine.begin() as conn:
        advisory_lock(conn, f"sheen-{name}")
        yield conn
