"""ingest queue and exception events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:50:35.010792
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trapline.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Until JSON columns mapped None to SQL NULL, clearing disabled_data stored JSON null, which
    # kept the rule out of "disabled_data IS NULL" (enabled) for good.
    for table in ("grouping_rule", "assignment_rule", "suppression_rule"):
        op.execute(f"UPDATE {table} SET disabled_data = NULL WHERE disabled_data = 'null'")
    op.create_table(
        "ingest_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("received_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.String(length=64), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", trapline.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_queue")),
    )
    op.create_table(
        "ingest_payload",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["ingest_queue.id"], name=op.f("fk_ingest_payload_id_ingest_queue"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_payload")),
    )
    op.create_table(
        "exception_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("timestamp", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("distinct_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("issue_id", sa.Uuid(), nullable=False),
        sa.Column("library", sa.String(length=64), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "properties", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_exception_event_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exception_event")),
        sa.UniqueConstraint("project_id", "uuid", name=op.f("uq_exception_event_project_id_uuid")),
    )
    with op.batch_alter_table("exception_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exception_event_fingerprint_time", ["project_id", "fingerprint", "timestamp"], unique=False
        )
        batch_op.create_index("ix_exception_event_time", ["project_id", "timestamp"], unique=False)

    op.create_table(
        "dropped_events",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_dropped_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_dropped_events_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "reason", name=op.f("pk_dropped_events")),
    )

    with op.batch_alter_table("issue_fingerprint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen", trapline.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("occurrences", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("issue_fingerprint", schema=None) as batch_op:
        batch_op.drop_column("occurrences")
        batch_op.drop_column("last_seen")

    with op.batch_alter_table("exception_event", schema=None) as batch_op:
        batch_op.drop_index("ix_exception_event_time")
        batch_op.drop_index("ix_exception_event_fingerprint_time")

    op.drop_table("dropped_events")
    op.drop_table("exception_event")
    op.drop_table("ingest_payload")
    op.drop_table("ingest_queue")
