"""Schema migrations: run Alembic from code, with one migrator at a time.

Several server and worker processes may start at once against one database; each calls
``upgrade()``. PostgreSQL serialises them with an advisory lock, SQLite with a lock file
next to the database, so exactly one runs the migrations and the others find them done.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from trapline.db import vacuum

__all__ = ["current_revision", "for_dialect", "head_revision", "is_up_to_date", "upgrade"]

# Any constant works; it only has to be the same in every Trapline process.
_PG_LOCK_KEY = 0x7472_6170_6C69_6E  # "trapline"


def for_dialect(dialect: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for one backend: leaves out model indexes made only on the
    other (``Index(...).ddl_if(dialect=...)``), which autogenerate would otherwise compare."""

    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        only_on = getattr(getattr(obj, "_ddl_if", None), "dialect", None)  # SQLAlchemy keeps it private
        return reflected or type_ != "index" or only_on in (None, dialect)

    return include


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to call from many processes at once."""
    with _migration_lock(engine):
        # Before the first table: SQLite's auto_vacuum mode can only be chosen then.
        vacuum.prepare_new(engine)
        if revision == "head" and is_up_to_date(engine):
            return
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                connection.commit()
        return
    database = engine.url.database
    assert database
    lock_path = Path(database + ".migrate-lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
