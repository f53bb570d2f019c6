"""Each event's explanation: the folder of its maps and curves, once explained.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.add_column(sa.Column("explanation", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.drop_column("explanation")
