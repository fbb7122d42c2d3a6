"""ingest_done: queue rows whose batch is stored, for a queue kept in a file of its own (SQLite)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_done",
        sa.Column(
            "queue_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.PrimaryKeyConstraint("queue_id", name=op.f("pk_ingest_done")),
    )


def downgrade() -> None:
    op.drop_table("ingest_done")
