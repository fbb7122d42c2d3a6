"""where merged-away issues went

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trapline.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merged_issue",
        sa.Column("issue_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("merged_into", sa.Uuid(), nullable=False),
        sa.Column("merged_at", trapline.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_merged_issue_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_merged_issue")),
    )
    with op.batch_alter_table("merged_issue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merged_issue_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_merged_issue_merged_into"), ["merged_into"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("merged_issue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merged_issue_merged_into"))
        batch_op.drop_index(batch_op.f("ix_merged_issue_project_id"))
    op.drop_table("merged_issue")
