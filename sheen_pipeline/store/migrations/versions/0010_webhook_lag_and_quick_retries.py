"""Webhook deliveries go independently: each row counts its quick retries (tries of an event
while the receiver is otherwise up, which cost no attempt of the schedule) and keeps when it was
queued, so the lag to its first 2xx can be measured.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("quick_retries", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("webhook_deliveries", sa.Column("queued_at", sa.Float))


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "queued_at")
    op.drop_column("webhook_deliveries", "quick_retries")
