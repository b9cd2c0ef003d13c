"""One SQLAlchemy engine per app database per process, its schema ensured on first use. SQLite
engines are set up for many processes at once (WAL, a long wait for another writer)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from sheen_pipeline.store.schema import ensure_schema

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
# How long a write to the embedded database waits for another process's write to end before it
# fails (the driver's default is 5 s, which ten concurrent `sheen build`s on a busy machine outlast).
SQLITE_BUSY_S = 60


def _share_between_processes(dbapi_connection: Any, _record: Any) -> None:
    """Many processes use the embedded database at once (CLI builds, run workers, `sheen serve`,
    deliverers): in WAL mode readers never block the writer nor it them. Commits still wait for
    the disk (`synchronous=FULL`): the ledger is money."""
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=FULL")


def _new_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, pool_pre_ping=True, connect_args={"timeout": SQLITE_BUSY_S})
    event.listen(engine, "connect", _share_between_processes)
    return engine


def engine_for(url: str) -> Engine:
    """One pooled engine per database per process, its schema ensured on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _new_engine(url)
            ensure_schema(engine)
            _engines[url] = engine
        return engine


def database_exists(engine: Engine) -> bool:
    """False once a SQLite database's file was deleted (an open connection would go on using
    the deleted file unnoticed); other databases are taken to exist."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return True
    return Path(url.database).exists()


def _forget_inherited_connections() -> None:
    """In a forked child (a Celery pool process, a forked run): drop the pooled connections the
    parent opened, without closing them (they are the parent's); a connection used on both sides
    of a fork corrupts both. The lock is made anew: another thread may have held it at the fork."""
    global _engines_lock
    _engines_lock = threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def dispose_engine(url: str) -> None:
    """Close the pooled connections of url (before its database is dropped)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
