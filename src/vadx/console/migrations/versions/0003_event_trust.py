"""Each event's explanation's trust verdict (trustworthy / weak / contradictory), when checked.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.add_column(sa.Column("trust", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.drop_column("trust")
