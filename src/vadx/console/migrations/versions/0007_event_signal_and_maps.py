"""Which signal raised an event (a classifier, or a camera's normal beside it or alone), and
the folder of a normality event's anomaly maps over its footage (``map.mp4``, ``map.png``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.add_column(
            sa.Column("signal", sa.String(16), nullable=False, server_default="classifier")
        )
        table.add_column(sa.Column("maps", sa.String(512), nullable=True))
    # before this, a normality model's events were its only class, "unusual"
    op.execute("UPDATE events SET signal = 'normality' WHERE class_name = 'unusual'")


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.drop_column("maps")
        table.drop_column("signal")
