"""error tracking settings, rate limit counters and daily usage

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "error_tracking_settings",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("project_rate_limit_value", sa.Integer(), nullable=True),
        sa.Column("project_rate_limit_bucket_size_minutes", sa.Integer(), nullable=True),
        sa.Column("per_issue_rate_limit_value", sa.Integer(), nullable=True),
        sa.Column("per_issue_rate_limit_bucket_size_minutes", sa.Integer(), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("max_events_per_issue", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_error_tracking_settings_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_error_tracking_settings")),
    )
    op.create_table(
        "rate_limit_counter",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("bucket_start", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("bucket_end", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_rate_limit_counter_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "scope", "bucket_start", name=op.f("pk_rate_limit_counter")),
    )
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_counter_bucket_end", ["bucket_end"], unique=False)
    op.create_table(
        "usage_day",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_usage_day_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "day", "outcome", name=op.f("pk_usage_day")),
    )


def downgrade() -> None:
    op.drop_table("usage_day")
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_counter_bucket_end")
    op.drop_table("rate_limit_counter")
    op.drop_table("error_tracking_settings")
