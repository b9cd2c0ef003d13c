"""Create or migrate the app schema; idempotent and safe when many processes start at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect

from sheen_pipeline.store.locks import file_lock
from sheen_pipeline.store.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
ADVISORY_LOCK_ID = 7_351_244
VERSION_TABLE = "sheen_schema_version"  # not alembic_version: Dagster's storage may share the DB


def _alembic(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _migration_context(conn: Connection) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _migration_context(conn).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    with file_lock(engine, "schema"), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_ID})")
        config = _alembic(conn)
        if _migration_context(conn).get_current_revision() is None:
            existing = set(inspect(conn).get_table_names()) & set(metadata.tables)
            if existing:
                command.stamp(config, BASELINE)  # tables made before migrations existed
            else:
                metadata.create_all(conn)
                command.stamp(config, "head")
                return
        command.upgrade(config, "head")
