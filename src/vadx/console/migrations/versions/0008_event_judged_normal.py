"""Whether an operator judged an event normal for its camera (not an incident): what
``vadx update-normal --console`` teaches the camera's normal.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.add_column(
            sa.Column("judged_normal", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.drop_column("judged_normal")
