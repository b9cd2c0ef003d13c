"""One SQLAlchemy engine per app database per process, its schema ensured on first use. SQLite
engines are set up for many processes at once (WAL, a long wait for another writer). What keeps
such engines per process safe across a fork (`ProcessEngines`) serves Dagster's storages too."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from sheen_pipeline.store.schema import ensure_schema

T = TypeVar("T")


class ProcessEngines(Generic[T]):
    """This process's values that each hold an engine, by key, made on first use. A forked child
    drops the connections it inherited, without closing them (they are the parent's; a connection
    used on both sides of a fork corrupts both), and makes the lock anew: another thread may have
    held it at the fork."""

    def __init__(self, engine_of: Callable[[T], Engine]) -> None:
        self.by_key: dict[str, T] = {}
        self.lock = threading.Lock()
        self._engine_of = engine_of
        os.register_at_fork(after_in_child=self._forget_inherited_connections)

    def get(self, key: str, make: Callable[[], T]) -> T:
        """The value of key; make() makes it, holding the lock, the first time."""
        with self.lock:
            value = self.by_key.get(key)
            if value is None:
                value = self.by_key[key] = make()
            return value

    def pop(self, key: str) -> T | None:
        with self.lock:
            return self.by_key.pop(key, None)

    def _forget_inherited_connections(self) -> None:
        self.lock = threading.Lock()
        for value in self.by_key.values():
            self._engine_of(value).dispose(close=False)


_engines: ProcessEngines[Engine] = ProcessEngines(lambda engine: engine)
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

    def make() -> Engine:
        engine = _new_engine(url)
        ensure_schema(engine)
        return engine

    return _engines.get(url, make)


def database_exists(engine: Engine) -> bool:
    """False once a SQLite database's file was deleted (an open connection would go on using
    the deleted file unnoticed); other databases are taken to exist."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return True
    return Path(url.database).exists()


def dispose_engine(url: str) -> None:
    """Close the pooled connections of url (before its database is dropped)."""
    engine = _engines.pop(url)
    if engine is not None:
        engine.dispose()
