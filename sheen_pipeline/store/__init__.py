"""The app's own tables (SQLAlchemy Core, SQLite or Postgres)."""
