"""Result cache (idempotent tasks and plans) and the start time of a build's current run.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "result_cache",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_result_cache_expires_at", "result_cache", ["expires_at"])
    op.add_column("builds", sa.Column("run_started_at", sa.DateTime(timezone=True)))
