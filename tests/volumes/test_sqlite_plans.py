"""SQLite has no statistics: the lookups a page repeats must be written so that its planner
seeks the index meant for them instead of reading every row of the project."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, event, func, select

from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.db.sets import in_strings
from trapline.issues import ordering
from trapline.issues.filters import IssueFilter, OrderKey, owned_by
from trapline.issues.models import IssueFingerprint
from trapline.volumes import counts, record
from trapline.volumes.models import FingerprintHour


@pytest.fixture(autouse=True)
def sqlite_only(database: Database) -> None:
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from its statistics")


def sent_by(database: Database, run: Callable[[], object]) -> list[tuple[str, Any]]:
    """The statements ``run`` sent, as executed (lists expanded, values processed)."""
    sent: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((sql, parameters))

    event.listen(database.engine, "before_cursor_execute", grab)
    try:
        run()
    finally:
        event.remove(database.engine, "before_cursor_execute", grab)
    return sent


def explained(database: Database, sql: str, parameters: Any) -> str:
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
    return " | ".join(str(row[-1]) for row in rows)


def plan_of(database: Database, statement: Select[Any]) -> str:
    """The plan of the statement as executed."""

    def run() -> None:
        with database.engine.connect() as connection:
            connection.execute(statement).all()

    sql, parameters = sent_by(database, run)[-1]
    assert "= 1" not in sql.replace("+ ?", ""), sql
    return explained(database, sql, parameters)


def test_given_issues_fingerprints_are_sought_by_issue(database: Database, tenant: Tenant):
    ids = [uuid.uuid4() for _ in range(50)]
    plan = plan_of(database, select(IssueFingerprint.fingerprint).where(*owned_by(tenant.project_id, ids)))
    assert "USING INDEX ix_issue_fingerprint_issue_id (issue_id=?)" in plan, plan


def test_a_bound_set_of_fingerprints_is_sought_in_the_project_index(database: Database, tenant: Tenant):
    statement = select(IssueFingerprint.issue_id).where(
        IssueFingerprint.project_id == tenant.project_id,
        in_strings(IssueFingerprint.fingerprint, [f"fp-{n}" for n in range(2000)]),
    )
    plan = plan_of(database, statement)
    assert "(project_id=? AND fingerprint=?)" in plan, plan


def test_sparkline_hours_are_read_from_the_index_alone(database: Database, tenant: Tenant):
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    bounds = [end - timedelta(hours=6) * (28 - i) for i in range(29)]
    hour = FingerprintHour.__table__.c.hour
    statement = (
        select(FingerprintHour.fingerprint, counts._bucket_of(hour, bounds, "sqlite"), func.sum(FingerprintHour.events))
        .where(
            FingerprintHour.project_id == tenant.project_id,
            FingerprintHour.fingerprint.in_([f"fp-{n}" for n in range(50)]),
            hour >= bounds[0],
            hour < bounds[-1],
        )
        .group_by(FingerprintHour.fingerprint, counts._bucket_of(hour, bounds, "sqlite"))
    )
    plan = plan_of(database, statement)
    assert "USING COVERING INDEX ix_fingerprint_hour_events" in plan, plan


def test_a_searched_latest_first_page_reads_the_recent_index(database: Database, tenant: Tenant):
    now = datetime.now(UTC)
    flt = IssueFilter(start=now - timedelta(days=7), end=now, search=["typeerror"])
    plan = plan_of(database, ordering._latest_first(tenant.project_id, flt, sqlite=True).limit(51))
    assert "USING INDEX ix_issue_fingerprint_recent" in plan, plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    # Each fingerprint read is tested for the search by one seek on its summary.
    assert "SEARCH fingerprint_text USING INDEX sqlite_autoindex_fingerprint_text_1 (project_id=? AND" in plan, plan


def test_cut_hours_are_counted_per_fingerprint_from_its_index(database: Database, tenant: Tenant):
    now = datetime.now(UTC).replace(minute=20)

    def run() -> None:
        with database.session(write=False) as session:
            counts.bucketed(session, tenant.project_id, [f"fp-{n}" for n in range(50)], [now - timedelta(days=1), now])

    [(sql, parameters)] = [(sql, parameters) for sql, parameters in sent_by(database, run) if "count(*)" in sql]
    plan = explained(database, sql, parameters)
    sought = "USING COVERING INDEX ix_exception_event_fingerprint_time (project_id=? AND fingerprint=?"
    assert plan.count(sought) == 2, plan  # the range's two cut hours
    assert "ix_exception_event_time" not in plan, plan


def _rollup_plans(
    database: Database, tenant: Tenant, run: Callable[[Any, list[record.Counted]], None]
) -> list[tuple[str, str]]:
    """What ``add``, then ``run``, sent to the day rollups and how SQLite planned it, for the
    events of two fingerprints on two days."""
    day = datetime.now(UTC).replace(hour=12)
    events = [
        record.Counted(tenant.project_id, f"fp-{n}", day - timedelta(days=back), f"user-{n}", f"session-{n}")
        for n in range(2)
        for back in range(2)
    ]

    def both() -> None:
        with database.engine.begin() as connection:
            record.add(connection, events)
            run(connection, events)

    sent = sent_by(database, both)
    return [(sql, explained(database, sql, parameters)) for sql, parameters in sent if "fingerprint_day" in sql]


def test_a_batch_reads_its_days_sketches_by_key(database: Database, tenant: Tenant):
    [plan] = [plan for sql, plan in _rollup_plans(database, tenant, lambda *_: None) if sql.startswith("SELECT")]
    # Not every day row of the project (as a row-value IN over the keys did: 16 ms a batch at
    # 1,000,000 events, growing with the issues and the days kept).
    assert "SCAN fingerprint_day" not in plan, plan
    assert "(project_id=? AND fingerprint=? AND day=?)" in plan, plan


def test_emptied_days_are_deleted_by_key(database: Database, tenant: Tenant):
    plans = _rollup_plans(database, tenant, lambda connection, events: record.remove(connection, events))
    [plan] = [plan for sql, plan in plans if sql.startswith("DELETE")]
    assert "SCAN fingerprint_day" not in plan, plan
    assert "(project_id=? AND fingerprint=? AND day=?" in plan, plan


@pytest.mark.parametrize("order_by", ["last_seen", "occurrences"])
def test_a_list_reads_assignments_only_when_filtered_by_assignee(
    database: Database, tenant: Tenant, order_by: OrderKey
):
    # Its count reads every issue in the range: a lookup per issue it does not need costs ~10%.
    now = datetime.now(UTC)
    plain = IssueFilter(start=now - timedelta(days=7), end=now, status="active")
    with database.session(write=False) as session:
        for flt, reads in ((plain, False), (replace(plain, unassigned=True), True)):
            statement = ordering.issue_order(tenant.project_id, flt, order_by=order_by, session=session)
            count = select(func.count()).select_from(statement.order_by(None).subquery())
            assert ("issue_assignment" in plan_of(database, count)) is reads, (flt, order_by)
