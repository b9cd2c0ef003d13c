"""Where each build was deployed (and what its upload sent), and what each project serves in
production.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("build_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("version_id", sa.String(64)),
        sa.Column("uploaded_files", sa.Integer, nullable=False),
        sa.Column("reused_files", sa.Integer, nullable=False),
        sa.Column("uploaded_bytes", sa.BigInteger, nullable=False),
        sa.Column("reused_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "production",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("build_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("promoted_by", sa.String(128), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False),
    )
