"""Alembic environment: always run by trapline.db.migrate with a live connection."""

from __future__ import annotations

from alembic import context

from trapline.db.migrate import for_dialect
from trapline.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode recreates the table instead.
    render_as_batch=True,
    compare_type=True,
    include_object=for_dialect(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
