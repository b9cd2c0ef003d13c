"""Versions: a build may change an earlier one (its base). The request row may name the base
(a build id, 'latest' or 'production'; the main app's insert stays valid without it), and the
build records the resolved id.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("build_requests", sa.Column("base_build_id", sa.String(64)))
    op.add_column("builds", sa.Column("base_build_id", sa.String(64)))
    op.create_index("ix_builds_base_build_id", "builds", ["base_build_id"])


def downgrade() -> None:
    op.drop_index("ix_builds_base_build_id", "builds")
    op.drop_column("builds", "base_build_id")
    op.drop_column("build_requests", "base_build_id")
