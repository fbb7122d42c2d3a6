"""the sign-in throttle's counts, shared by every server process

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 22:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_throttle",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("window_start", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "email", "address", name=op.f("pk_signin_throttle")),
    )
    with op.batch_alter_table("signin_throttle", schema=None) as batch_op:
        batch_op.create_index("ix_signin_throttle_window_start", ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signin_throttle", schema=None) as batch_op:
        batch_op.drop_index("ix_signin_throttle_window_start")
    op.drop_table("signin_throttle")
