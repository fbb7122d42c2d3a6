"""The inbox's default order (latest seen first) read from the fingerprints' last seen index
lists the same issues in the same order as ordering every fingerprint in the range does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.factories import Tenant
from tests.issue_data import add_fingerprint, make_issue
from trapline.db.engine import Database
from trapline.issues import ordering, queries
from trapline.issues.models import IssueFingerprint

NOW = datetime.now(UTC).replace(microsecond=0)


def fill(database: Database, tenant: Tenant, seed: int) -> None:
    """Issues of one to three fingerprints, statuses and assignees mixed, last seen over ten
    days on whole minutes (so that many tie, within an issue and across issues)."""
    rng = random.Random(seed)
    with database.session(write=True) as session:
        for n in range(120):
            status = rng.choice(["active", "active", "resolved", "suppressed", "pending_release"])
            user = tenant.user_id if rng.random() < 0.3 else None
            issue = make_issue(session, tenant.project_id, [f"fp-{n}-0"], status=status, user_id=user)
            for extra in range(rng.choice([0, 0, 1, 2])):
                add_fingerprint(session, issue, f"fp-{n}-{extra + 1}")
        for row in session.query(IssueFingerprint).all():
            last_seen = NOW - timedelta(minutes=rng.randrange(10 * 24 * 60 // 97) * 97)
            row.first_seen = last_seen - timedelta(hours=rng.randrange(100))
            row.last_seen = last_seen
        session.commit()


def serves(session: Session, tenant: Tenant, flt: queries.IssueFilter) -> bool:
    sqlite = session.get_bind().dialect.name == "sqlite"
    return ordering._latest_first_serves(session, tenant.project_id, flt, sqlite=sqlite)


FILTERS = [
    queries.IssueFilter(start=NOW - timedelta(days=7), end=NOW + timedelta(seconds=1), status="active"),
    queries.IssueFilter(start=NOW - timedelta(days=3), end=NOW, status="all"),
    queries.IssueFilter(start=NOW - timedelta(days=30), end=NOW, status="resolved"),
    queries.IssueFilter(start=None, end=None, status="all", unassigned=True),
    queries.IssueFilter(start=NOW - timedelta(days=9), end=NOW, status="all", assignee=None),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_latest_first_lists_what_ordering_every_fingerprint_lists(database: Database, tenant: Tenant, seed: int):
    fill(database, tenant, seed)
    with database.session(write=False) as session:
        for flt in [
            *FILTERS,
            queries.IssueFilter(start=NOW - timedelta(days=5), end=NOW, assignee=("user", tenant.user_id)),
        ]:
            assert serves(session, tenant, flt), flt
            fast = queries.issue_order(tenant.project_id, flt, session=session)
            general = queries.issue_order(tenant.project_id, flt)  # no session: every fingerprint ordered
            assert "newer_fingerprint" in str(fast) and "newer_fingerprint" not in str(general)
            everything = list(session.scalars(general))
            assert everything, flt
            assert list(session.scalars(fast)) == everything, flt
            for offset in (0, 7, len(everything) - 3):  # pages, as the inbox asks for them
                page = list(session.scalars(fast.limit(10).offset(offset)))
                assert page == everything[offset : offset + 10], (flt, offset)


def test_a_fingerprint_seen_after_the_range_or_never_needs_the_rollups(database: Database, tenant: Tenant):
    fill(database, tenant, 4)
    flt = queries.IssueFilter(start=NOW - timedelta(days=7), end=NOW - timedelta(days=1))
    with database.session(write=True) as session:
        assert not serves(session, tenant, flt)  # seen since the range ended
        assert serves(session, tenant, queries.IssueFilter(start=None, end=None))
        session.execute(update(IssueFingerprint).where(IssueFingerprint.fingerprint == "fp-5-0").values(last_seen=None))
        session.commit()
        assert not serves(session, tenant, queries.IssueFilter(start=None, end=None))
        # Other orders, and searches, never take it.
        searched = queries.IssueFilter(start=None, end=None, search=("boom",))
        assert not serves(session, tenant, searched)


def test_sqlite_reads_the_page_from_the_recent_index(database: Database, tenant: Tenant):
    """Without statistics SQLite would plan the order from an index led by project_id and sort
    every fingerprint: the query must read the recent index (and stop after the page)."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from its statistics")
    fill(database, tenant, 5)
    flt = FILTERS[0]
    with database.session(write=False) as session:
        statement = queries.issue_order(tenant.project_id, flt, session=session).limit(51)
        compiled = statement.compile(dialect=database.engine.dialect)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        plan = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).all()
    steps = " | ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_issue_fingerprint_recent" in steps, steps
    assert "USE TEMP B-TREE FOR ORDER BY" not in steps, steps  # only ties are sorted, if any
