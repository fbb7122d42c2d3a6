"""alerts, deliveries and spike detection

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trapline.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issue_spike_cooldown",
        sa.Column("issue_id", sa.Uuid(), nullable=False),
        sa.Column("until", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_issue_spike_cooldown")),
    )
    with op.batch_alter_table("issue_spike_cooldown", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_spike_cooldown_until"), ["until"], unique=False)

    op.create_table(
        "alert",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("window_minutes", sa.Integer(), nullable=True),
        sa.Column("interval_minutes", sa.Integer(), nullable=True),
        sa.Column(
            "filters",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("destination_type", sa.String(length=16), nullable=False),
        sa.Column(
            "destination",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("throttle_max", sa.Integer(), nullable=True),
        sa.Column("throttle_minutes", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_alert_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_project_id"), ["project_id"], unique=False)

    op.create_table(
        "fingerprint_minute",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint_hash", sa.BigInteger(), nullable=False),
        sa.Column("minute", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_fingerprint_minute_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "fingerprint_hash", "minute", name=op.f("pk_fingerprint_minute")),
    )
    with op.batch_alter_table("fingerprint_minute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fingerprint_minute_minute"), ["minute"], unique=False)

    op.create_table(
        "fingerprint_user",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint_hash", sa.BigInteger(), nullable=False),
        sa.Column("minute", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_hash", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_fingerprint_user_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "fingerprint_hash", "minute", "user_hash", name=op.f("pk_fingerprint_user")
        ),
    )

    op.create_table(
        "issue_bucket",
        sa.Column("issue_id", sa.Uuid(), nullable=False),
        sa.Column("bucket_start", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_issue_bucket_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issue_id", "bucket_start", name=op.f("pk_issue_bucket")),
    )
    with op.batch_alter_table("issue_bucket", schema=None) as batch_op:
        batch_op.create_index("ix_issue_bucket_project_start", ["project_id", "bucket_start"], unique=False)

    op.create_table(
        "spike_detection_config",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("multiplier", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("snooze_duration_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_spike_detection_config_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_spike_detection_config")),
    )
    op.create_table(
        "alert_delivery",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("issue_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_uuid", sa.Uuid(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary_count", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_alert_delivery_alert_id_alert"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_alert_delivery_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery")),
    )
    with op.batch_alter_table("alert_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_alert_delivery_alert_created", ["alert_id", "created_at"], unique=False)
        batch_op.create_index("ix_alert_delivery_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_alert_delivery_issue_created", ["issue_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_delivery_summary_id"), ["summary_id"], unique=False)

    op.create_table(
        "alert_issue_state",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("issue_id", sa.Uuid(), nullable=False),
        sa.Column("over", sa.Boolean(), nullable=False),
        sa.Column("last_fired_at", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_alert_issue_state_alert_id_alert"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("alert_id", "issue_id", name=op.f("pk_alert_issue_state")),
    )
    op.create_table(
        "spike_event",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Uuid(), nullable=False),
        sa.Column("detected_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_baseline", sa.Float(), nullable=False),
        sa.Column("current_bucket_value", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issue.id"], name=op.f("fk_spike_event_issue_id_issue"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_spike_event_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spike_event")),
    )
    with op.batch_alter_table("spike_event", schema=None) as batch_op:
        batch_op.create_index("ix_spike_event_issue_detected", ["issue_id", "detected_at"], unique=False)
        batch_op.create_index("ix_spike_event_project_detected", ["project_id", "detected_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spike_event", schema=None) as batch_op:
        batch_op.drop_index("ix_spike_event_project_detected")
        batch_op.drop_index("ix_spike_event_issue_detected")

    op.drop_table("spike_event")
    op.drop_table("alert_issue_state")
    with op.batch_alter_table("alert_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_delivery_summary_id"))
        batch_op.drop_index("ix_alert_delivery_issue_created")
        batch_op.drop_index("ix_alert_delivery_due")
        batch_op.drop_index("ix_alert_delivery_alert_created")

    op.drop_table("alert_delivery")
    op.drop_table("spike_detection_config")
    with op.batch_alter_table("issue_bucket", schema=None) as batch_op:
        batch_op.drop_index("ix_issue_bucket_project_start")

    op.drop_table("issue_bucket")

    op.drop_table("fingerprint_user")
    with op.batch_alter_table("fingerprint_minute", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fingerprint_minute_minute"))

    op.drop_table("fingerprint_minute")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_project_id"))

    op.drop_table("alert")
    with op.batch_alter_table("issue_spike_cooldown", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_spike_cooldown_until"))

    op.drop_table("issue_spike_cooldown")
