"""a Sentry DSN key per project

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("sentry_public_key", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    project = sa.table("project", sa.column("id", sa.Integer()), sa.column("sentry_public_key", sa.String()))
    for (project_id,) in connection.execute(sa.select(project.c.id)).all():
        connection.execute(
            project.update().where(project.c.id == project_id).values(sentry_public_key=secrets.token_hex(16))
        )
    with op.batch_alter_table("project") as batch:
        batch.alter_column("sentry_public_key", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(batch.f("uq_project_sentry_public_key"), ["sentry_public_key"])


def downgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.drop_constraint(batch.f("uq_project_sentry_public_key"), type_="unique")
        batch.drop_column("sentry_public_key")
