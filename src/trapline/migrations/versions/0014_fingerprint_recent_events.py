"""each fingerprint's events over the week before its last change, which lists ordered by
occurrences over the last 7 days read instead of summing its day rows; empty until a worker
rolls them to today (or the pipeline changes the fingerprint), and read from the day rows
meanwhile; and an index of one fingerprint's days, which recounts them

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy on SQLite): both are nullable or have a default.
    op.add_column("issue_fingerprint", sa.Column("recent_day", trapline.db.types.UTCDateTime(timezone=True)))
    op.add_column("issue_fingerprint", sa.Column("recent_events", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index("ix_fingerprint_day_fingerprint", "fingerprint_day", ["project_id", "fingerprint", "day", "events"])


def downgrade() -> None:
    op.drop_index("ix_fingerprint_day_fingerprint", table_name="fingerprint_day")
    with op.batch_alter_table("issue_fingerprint", schema=None) as batch_op:
        batch_op.drop_column("recent_events")
        batch_op.drop_column("recent_day")
