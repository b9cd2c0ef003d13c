"""Plans indexed by age: the code location lists only the newest ones.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_plans_created_at", "plans", ["created_at"])
