"""SQLite in WAL mode commits without a disk flush per commit; other journals keep theirs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

import sheen_pipeline.sqlite_commits  # noqa: F401

NORMAL, FULL = 1, 2


def synchronous(path: Path) -> int:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.connect() as conn:
        value: int = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
    return value


def test_wal_databases_commit_without_flushing(tmp_path: Path) -> None:
    wal = tmp_path / "wal.db"
    with create_engine(f"sqlite:///{wal}").connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    assert synchronous(wal) == NORMAL
    assert synchronous(tmp_path / "journal.db") == FULL
