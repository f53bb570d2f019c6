"""Upload jobs beside the cameras' events: a ``jobs`` table, and each detected event of an
upload in ``events`` with its job and its index in the job's result.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("video", sa.String(32), nullable=False),
        sa.Column("video_name", sa.String(256), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float, nullable=True),
        sa.Column("finished", sa.Float, nullable=True),
    )
    with op.batch_alter_table("events") as table:
        table.add_column(sa.Column("job_id", sa.String(32), nullable=True))
        table.add_column(sa.Column("job_event", sa.Integer, nullable=True))
    op.create_index("events_job", "events", ["job_id", "job_event"], unique=True)


def downgrade() -> None:
    op.drop_index("events_job", "events")
    with op.batch_alter_table("events") as table:
        table.drop_column("job_event")
        table.drop_column("job_id")
    op.drop_table("jobs")
