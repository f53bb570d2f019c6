"""The first schema: cameras declared at runtime, and their events with review state.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("added_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("class_name", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("start_frame", sa.Integer, nullable=False),
        sa.Column("end_frame", sa.Integer, nullable=False),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("peak_probability", sa.Float, nullable=False),
        sa.Column("mean_probability", sa.Float, nullable=False),
        sa.Column("out_of_domain", sa.Float, nullable=True),
        sa.Column("session", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(256), nullable=True),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("footage", sa.String(512), nullable=True),
        sa.Column("reviewed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reviewed_at", sa.Float, nullable=True),
    )
    op.create_index("events_camera_started", "events", ["camera", "started_at"])
    op.create_index("events_started", "events", ["started_at"])


def downgrade() -> None:
    op.drop_index("events_started", "events")
    op.drop_index("events_camera_started", "events")
    op.drop_table("events")
    op.drop_table("cameras")
