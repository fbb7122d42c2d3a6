"""on SQLite, an index of the hour rollups that holds their events, so that sparklines and
ranged counts read the index alone instead of each row from the table

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            "ix_fingerprint_hour_events", "fingerprint_hour", ["project_id", "fingerprint", "hour", "events"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_fingerprint_hour_events", table_name="fingerprint_hour")
