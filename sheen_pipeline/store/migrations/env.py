"""Alembic environment: migrations run on the connection `ensure_schema` hands over."""

from alembic import context

from sheen_pipeline.store.schema import VERSION_TABLE
from sheen_pipeline.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
