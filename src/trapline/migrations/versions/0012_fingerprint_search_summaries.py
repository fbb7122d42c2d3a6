"""search summaries per fingerprint: a trigram Bloom filter and the parts all its events share,
filled from the events already stored

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_text",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("trigrams", sa.LargeBinary(), nullable=False),
        sa.Column("common", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_fingerprint_text_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "fingerprint", name=op.f("pk_fingerprint_text")),
    )
    from trapline.search.record import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("fingerprint_text")
