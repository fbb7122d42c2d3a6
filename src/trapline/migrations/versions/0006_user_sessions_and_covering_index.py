"""web UI sessions; the fingerprint index covers users and sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_session",
        sa.Column("secure_value", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_user_session_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("secure_value", name=op.f("pk_user_session")),
    )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_session_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_session_expires_at"), ["expires_at"], unique=False)
    # Covering the issue list's counts; on SQLite its search too (see ExceptionEvent).
    columns = ["project_id", "fingerprint", "timestamp", "distinct_id", "session_id"]
    if op.get_bind().dialect.name == "sqlite":
        columns.append("search_text")
    with op.batch_alter_table("exception_event", schema=None) as batch_op:
        batch_op.drop_index("ix_exception_event_fingerprint_time")
        batch_op.create_index("ix_exception_event_fingerprint_time", columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exception_event", schema=None) as batch_op:
        batch_op.drop_index("ix_exception_event_fingerprint_time")
        batch_op.create_index(
            "ix_exception_event_fingerprint_time", ["project_id", "fingerprint", "timestamp"], unique=False
        )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_session_expires_at"))
        batch_op.drop_index(batch_op.f("ix_user_session_user_id"))
    op.drop_table("user_session")
