"""The webhook receiver's shared health, and heartbeats of running builds.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("url_hash", sa.String(64), primary_key=True),
        sa.Column("disabled_at", sa.Float),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("failing_since", sa.Float),
        sa.Column("last_attempt_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("last_success_at", sa.Float),
        sa.Column("deliverer_seen_at", sa.Float, nullable=False, server_default="0"),
    )
    op.add_column("builds", sa.Column("heartbeat_at", sa.Float))
