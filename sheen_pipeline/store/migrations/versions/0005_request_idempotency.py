"""Requests remember the webhook-id they came with, so a repeated request makes no second build.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("build_requests", sa.Column("idempotency_key", sa.String(128)))
    op.create_index(
        "ix_build_requests_idempotency_key", "build_requests", ["idempotency_key"], unique=True
    )
