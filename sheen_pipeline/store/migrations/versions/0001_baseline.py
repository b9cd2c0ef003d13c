"""Baseline: the schema of tables.py when migrations were introduced.

A new database gets the current tables from tables.py and is stamped at the newest revision;
an existing one runs the revisions it has not seen. A schema change is a change to tables.py
plus a new revision here that brings existing databases to it.

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
