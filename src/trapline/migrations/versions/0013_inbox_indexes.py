"""an index of fingerprints by last seen: the inbox's default order (latest first) reads the
first page of issues from it instead of ordering every fingerprint; and one of issues by
project and status, which the status tabs count

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 11:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_issue_fingerprint_recent", "issue_fingerprint", ["last_seen", "project_id"])
    op.create_index("ix_issue_project_status", "issue", ["project_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_issue_project_status", table_name="issue")
    op.drop_index("ix_issue_fingerprint_recent", table_name="issue_fingerprint")
