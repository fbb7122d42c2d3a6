"""issue volume rollups: events per fingerprint and hour, and per day with user and session
sketches, filled from the events already stored

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_hour",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("hour", trapline.db.types.UTCDateTime(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_fingerprint_hour_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "fingerprint", "hour", name=op.f("pk_fingerprint_hour")),
    )
    op.create_table(
        "fingerprint_day",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("day", trapline.db.types.UTCDateTime(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("users", sa.LargeBinary(), nullable=True),
        sa.Column("sessions", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_fingerprint_day_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "fingerprint", "day", name=op.f("pk_fingerprint_day")),
    )
    op.create_index("ix_fingerprint_day_range", "fingerprint_day", ["project_id", "day", "fingerprint", "events"])
    # Existing events are counted once here; from now on the pipeline keeps the rollups.
    from trapline.volumes.rebuild import rebuild

    # (The fingerprints' recent events come with 0014, which leaves them for the workers.)
    rebuild(op.get_bind(), windows=False)


def downgrade() -> None:
    op.drop_index("ix_fingerprint_day_range", table_name="fingerprint_day")
    op.drop_table("fingerprint_day")
    op.drop_table("fingerprint_hour")
