"""Budget reservations name their build: a build's admission holds its whole estimate, its calls
draw from it, and everything it holds is released when it ends (killed processes included,
through the heartbeat check), not after an hour.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("budget_reservations", sa.Column("build_id", sa.String(64)))
    op.create_index("ix_budget_reservations_build_id", "budget_reservations", ["build_id"])


def downgrade() -> None:
    op.drop_index("ix_budget_reservations_build_id", "budget_reservations")
    op.drop_column("budget_reservations", "build_id")
