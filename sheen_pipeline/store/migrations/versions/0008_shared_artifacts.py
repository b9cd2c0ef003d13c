"""Artifacts every process can reach: file contents by sha256, each build's files per stage, and
Dagster's step outputs.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "build_files",
        sa.Column("build_id", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("path", sa.String(512), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "step_outputs",
        sa.Column("output_key", sa.String(512), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
