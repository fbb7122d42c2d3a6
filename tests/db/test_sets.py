"""``in_strings`` and ``in_values`` select what ``IN (...)`` selects, on both backends."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from trapline.accounts.models import Organization
from trapline.db.engine import Database
from trapline.db.sets import in_strings, in_values

NAMES = [
    "plain",
    "it's quoted",
    'double "quoted"',
    "back\\slash",
    "comma, and [brackets]",
    "{braces}",
    "ünïcode ✓",
    "emoji 🚀",
    "null",
    "",
    "  spaced  ",
    "a" * 190,
]


def test_selects_what_in_selects_and_binds_one_value(database: Database):
    with database.session(write=True) as session:
        session.execute(delete(Organization))
        session.add_all(Organization(name=name) for name in NAMES)
        session.commit()
        for subset in [NAMES, NAMES[::2], ["missing", NAMES[3]], [], [f"x{n}" for n in range(3000)] + [NAMES[-1]]]:
            statement = select(Organization.name).where(in_strings(Organization.name, subset))
            compiled = statement.compile(session.get_bind())
            assert len(compiled.params) == 1  # the whole set is one parameter
            found = sorted(session.scalars(statement))
            assert found == sorted(name for name in NAMES if name in subset), subset
            assert found == sorted(session.scalars(select(Organization.name).where(Organization.name.in_(subset))))


# What both backends store: no lone surrogates (not UTF-8), no NUL (not PostgreSQL text).
_STORABLE = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=_STORABLE, max_size=60), max_size=8))
def test_any_text_round_trips(database: Database, values: list[str]):
    with database.session(write=True) as session:
        session.execute(delete(Organization))
        session.add_all(Organization(name=value) for value in set(values))
        session.flush()
        found = set(session.scalars(select(Organization.name).where(in_strings(Organization.name, values))))
        assert found == set(values)
        session.rollback()


def test_in_values_selects_what_in_selects_for_uuids_and_text(database: Database):
    """The same statement, cached after its first run, with sets of other sizes: a cached
    statement that kept its first values, or a PostgreSQL array of the wrong type, fails."""
    with database.session(write=True) as session:
        session.execute(delete(Organization))
        session.add_all(Organization(name=name) for name in NAMES)
        session.commit()
        rows = session.execute(select(Organization.id, Organization.name)).all()
        ids = [row.id for row in rows]
        on_postgresql = session.get_bind().dialect.name == "postgresql"
        for subset in [ids, ids[::3], ids[:1], [uuid.uuid4()], []]:
            statement = select(Organization.name).where(in_values(Organization.id, subset))
            if on_postgresql and subset:
                assert len(statement.compile(session.get_bind()).params) == 1  # one array
            assert sorted(session.scalars(statement)) == sorted(row.name for row in rows if row.id in subset)
        for names in [NAMES[:2], NAMES[5:], ["missing"]]:
            found = sorted(session.scalars(select(Organization.name).where(in_values(Organization.name, names))))
            assert found == sorted(name for name in NAMES if name in names)


def test_in_values_keeps_sqlites_plain_list():
    """SQLite's plans of a page's statements were measured with ``IN (…)``: it keeps it."""
    statement = select(Organization.name).where(in_values(Organization.name, ["a", "b"]))
    sqlite_sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True}))
    postgres_sql = str(statement.compile(dialect=postgresql.dialect()))
    assert "IN (?, ?)" in sqlite_sql
    assert "= ANY(" in postgres_sql
