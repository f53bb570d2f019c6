"""What each event's clip covers: its first and last frames and stream times (the window that
decided the event, then the seconds before and after it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("footage_start_frame", sa.Integer),
    ("footage_end_frame", sa.Integer),
    ("footage_start_time", sa.Float),
    ("footage_end_time", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        for name, kind in COLUMNS:
            table.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        for name, _ in reversed(COLUMNS):
            table.drop_column(name)
