"""Create or migrate the app schema; idempotent and safe when many processes start at once.
Alembic is imported only when there is something to do: a process that finds the schema at the
newest revision (every one but the first) is spared its import."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from sheen_pipeline.store.locks import file_lock
from sheen_pipeline.store.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config  # pragma: no cover

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
ADVISORY_LOCK_ID = 7_351_244
VERSION_TABLE = "sheen_schema_version"  # not alembic_version: Dagster's storage may share the DB


def _alembic(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@cache
def head() -> str:
    """The newest revision: migrations form one line, named <revision>_<what>.py, so the newest
    file names it (read when first needed, not at import)."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _stored_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    revision: str | None = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return revision


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _stored_revision(conn)


def ensure_schema(engine: Engine) -> None:
    with file_lock(engine, "schema"), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_ID})")
        current = _stored_revision(conn)
        if current == head():
            return
        from alembic import command

        config = _alembic(conn)
        if current is None:
            existing = set(inspect(conn).get_table_names()) & set(metadata.tables)
            if existing:
                command.stamp(config, BASELINE)  # tables made before migrations existed
            else:
                metadata.create_all(conn)
                command.stamp(config, "head")
                return
        command.upgrade(config, "head")
