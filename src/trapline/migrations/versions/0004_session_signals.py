"""session signals

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:08:07.605374
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_signal",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("signal", sa.String(length=300), nullable=False),
        sa.Column("first_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_session_signal_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "session_id", "signal", name=op.f("pk_session_signal")),
    )
    with op.batch_alter_table("session_signal", schema=None) as batch_op:
        batch_op.create_index("ix_session_signal_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_signal", schema=None) as batch_op:
        batch_op.drop_index("ix_session_signal_expires_at")

    op.drop_table("session_signal")
