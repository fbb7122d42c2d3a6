"""The volume rollups count exactly the stored events, through the pipeline, retention,
merges and the queries that read them; distinct users and sessions past the exact limit are
estimates within the sketches' error."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.capture import drain, exception, exception_event, post_batch
from tests.factories import Tenant
from tests.volumes.support import assert_rollups_match
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.issues import queries
from trapline.issues.service import merge_issues
from trapline.retention import Retention, RetentionOptions
from trapline.volumes import counts
from trapline.volumes.rebuild import rebuild

NOW = datetime.now(UTC).replace(microsecond=0)


def at(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat()


def send(client: TestClient, tenant: Tenant, database: Database, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 200):
        assert post_batch(client, tenant.project_token, *events[start : start + 200]).status_code == 200
    drain(database)


def spread(count: int, *, kinds: int = 3, seed: int = 7, users: int = 40) -> list[dict[str, Any]]:
    """Events of a few kinds over the last 10 days, at random minutes, from a few users."""
    rng = random.Random(seed)
    return [
        exception_event(
            exception(type_=f"Kind{rng.randrange(kinds)}Error"),
            distinct_id=f"user-{rng.randrange(users)}",
            timestamp=at(rng.uniform(0.01, 240)),
            **{"$session_id": f"session-{rng.randrange(users * 2)}"},
        )
        for _ in range(count)
    ]


def stored_events(database: Database) -> list[tuple[str, datetime]]:
    with database.session(write=False) as session:
        return [(f, t) for f, t in session.execute(select(ExceptionEvent.fingerprint, ExceptionEvent.timestamp))]


def test_the_pipeline_counts_every_stored_event_into_its_hour_and_day(
    client: TestClient, tenant: Tenant, database: Database
):
    send(client, tenant, database, spread(300))
    # A retried request adds nothing: its events are stored once, and counted once.
    again = spread(20, seed=99)
    send(client, tenant, database, again)
    send(client, tenant, database, again)
    assert len(stored_events(database)) == 320
    assert_rollups_match(database)


@pytest.fixture
def filled(client: TestClient, tenant: Tenant, database: Database) -> list[tuple[str, datetime]]:
    send(client, tenant, database, spread(400, kinds=2))
    return stored_events(database)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.floats(min_value=0, max_value=250),
    length=st.floats(min_value=0, max_value=250),
    buckets=st.integers(min_value=1, max_value=60),
)
def test_bucketed_counts_equal_counting_the_events(
    filled: list[tuple[str, datetime]], tenant: Tenant, database: Database, start: float, length: float, buckets: int
):
    first = NOW - timedelta(hours=start)
    last = first + timedelta(hours=length)
    bounds = queries.bucket_bounds(queries.DateRange(first, last), buckets)
    assert_bucketed_as_events(filled, tenant, database, bounds)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    end=st.integers(min_value=-30, max_value=250),
    step=st.integers(min_value=1, max_value=12),
    buckets=st.integers(min_value=1, max_value=40),
)
def test_whole_hour_buckets_equal_counting_the_events(
    filled: list[tuple[str, datetime]], tenant: Tenant, database: Database, end: int, step: int, buckets: int
):
    # A sparkline's bounds: whole hours a fixed step apart, whose bucket is computed by
    # division rather than tested bound by bound.
    last = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=end)
    bounds = [last - timedelta(hours=step) * (buckets - i) for i in range(buckets + 1)]
    assert_bucketed_as_events(filled, tenant, database, bounds)


def assert_bucketed_as_events(
    filled: list[tuple[str, datetime]], tenant: Tenant, database: Database, bounds: list[datetime]
) -> None:
    buckets = len(bounds) - 1
    fingerprints = sorted({f for f, _ in filled})
    with database.session(write=False) as session:
        got = counts.bucketed(session, tenant.project_id, fingerprints, bounds)
    for fingerprint in fingerprints:
        want = counted_buckets(filled, fingerprint, bounds)
        assert got.get(fingerprint, [0] * buckets) == want, (fingerprint, bounds)


def counted_buckets(filled: list[tuple[str, datetime]], fingerprint: str, bounds: list[datetime]) -> list[int]:
    buckets = len(bounds) - 1
    want = [0] * buckets
    for f, t in filled:
        if f != fingerprint or not bounds[0] <= t <= bounds[-1]:
            continue
        index = next(i for i in range(buckets) if t < bounds[i + 1] or i == buckets - 1)
        want[index] += 1
    return want


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    end=st.integers(min_value=-3, max_value=100),
    step=st.integers(min_value=1, max_value=12),
    buckets=st.integers(min_value=1, max_value=30),
    uneven=st.booleans(),
    start=st.floats(min_value=-2, max_value=250),
    length=st.floats(min_value=0, max_value=250),
)
def test_buckets_and_a_total_read_together_equal_counting_the_events(
    filled: list[tuple[str, datetime]],
    tenant: Tenant,
    database: Database,
    end: int,
    step: int,
    buckets: int,
    uneven: bool,
    start: float,
    length: float,
):
    # A list's sparklines (whole hours a step apart, or any bounds) and its numbers over a
    # range that may cover more, less or other hours than the buckets.
    last = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=end)
    if uneven:
        bounds = queries.bucket_bounds(queries.DateRange(last - timedelta(hours=step * buckets + 0.3), last), buckets)
    else:
        bounds = [last - timedelta(hours=step) * (buckets - i) for i in range(buckets + 1)]
    first = NOW - timedelta(hours=start)
    until = first + timedelta(hours=length)
    fingerprints = sorted({f for f, _ in filled})
    with database.session(write=False) as session:
        got, totals = counts.bucketed_and_total(session, tenant.project_id, fingerprints, bounds, first, until)
    for fingerprint in fingerprints:
        want = counted_buckets(filled, fingerprint, bounds)
        assert got.get(fingerprint, [0] * buckets) == want, (fingerprint, bounds)
        in_range = sum(1 for f, t in filled if f == fingerprint and first <= t <= until)
        assert totals.get(fingerprint, 0) == in_range, (fingerprint, first, until)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.floats(min_value=0, max_value=250),
    length=st.floats(min_value=0, max_value=250),
    open_start=st.booleans(),
)
def test_ranged_totals_equal_counting_the_events(
    filled: list[tuple[str, datetime]],
    tenant: Tenant,
    database: Database,
    start: float,
    length: float,
    open_start: bool,
):
    # Ranges of many days read whole days from the day table, short ones hours only.
    first = NOW - timedelta(hours=start)
    last = first + timedelta(hours=length)
    fingerprints = sorted({f for f, _ in filled})
    with database.session(write=False) as session:
        got = counts.total_counts(session, tenant.project_id, fingerprints, None if open_start else first, last)
    for fingerprint in fingerprints:
        want = sum(1 for f, t in filled if f == fingerprint and (open_start or first <= t) and t <= last)
        assert got.get(fingerprint, 0) == want, (fingerprint, first, last)


def test_events_on_midnight_and_on_the_bounds_count_once(client: TestClient, tenant: Tenant, database: Database):
    midnight = (NOW - timedelta(days=3)).replace(hour=0, minute=0, second=0)
    moments = [
        midnight - timedelta(days=1, minutes=30),  # the range's start, in a cut hour
        midnight - timedelta(hours=5),  # a whole hour before the first whole day
        midnight,  # the first whole day's first instant
        midnight + timedelta(days=1),  # the second whole day's
        midnight + timedelta(days=2),  # the end's day, on its first instant
        midnight + timedelta(days=2, hours=3, minutes=10),  # the range's end, in a cut hour
    ]
    send(client, tenant, database, [exception_event(timestamp=m.isoformat()) for m in moments])
    [(fingerprint, _), *_] = stored_events(database)
    with database.session(write=False) as session:
        for low, high, want in [
            (moments[0], moments[-1], 6),
            (moments[0] + timedelta(seconds=1), moments[-1] - timedelta(seconds=1), 4),
            (midnight, midnight + timedelta(days=2), 3),
            (midnight - timedelta(hours=1), midnight + timedelta(days=2) - timedelta(microseconds=1), 2),
        ]:
            got = counts.total_counts(session, tenant.project_id, [fingerprint], low, high)
            assert got.get(fingerprint, 0) == want, (low, high)


@pytest.mark.parametrize("aligned", [True, False])
def test_bounds_on_the_hour_and_events_on_them_count_once(
    client: TestClient, tenant: Tenant, database: Database, aligned: bool
):
    hour = (NOW - timedelta(hours=30)).replace(minute=0, second=0)
    moments = [hour, hour + timedelta(minutes=30), hour + timedelta(hours=1), hour + timedelta(hours=2, minutes=1)]
    send(client, tenant, database, [exception_event(timestamp=m.isoformat()) for m in moments])
    [(fingerprint, _), *_] = stored_events(database)
    end = hour + timedelta(hours=2) if aligned else hour + timedelta(hours=2, minutes=5)
    with database.session(write=False) as session:
        got = counts.bucketed(session, tenant.project_id, [fingerprint], [hour, hour + timedelta(hours=1), end])
    assert got[fingerprint] == ([2, 1] if aligned else [2, 2])


def test_an_issue_list_counts_exactly_and_orders_by_the_days_it_touches(
    client: TestClient, tenant: Tenant, database: Database, filled: list[tuple[str, datetime]]
):
    start, end = NOW - timedelta(days=7), NOW
    flt = queries.IssueFilter(start=start, end=end)
    with database.session(write=False) as session:
        ids = list(session.scalars(queries.issue_order(tenant.project_id, flt, order_by="occurrences")))
        summaries = queries.summarize(session, tenant.project_id, flt, ids)
    by_fingerprint: dict[str, int] = {}
    for f, t in filled:
        if start <= t <= end:
            by_fingerprint[f] = by_fingerprint.get(f, 0) + 1
    assert sorted(s.aggregates.occurrences for s in summaries) == sorted(by_fingerprint.values())
    assert all(not s.aggregates.estimated for s in summaries)


def test_a_page_of_estimated_issues_matches_its_exact_counts_issue_by_issue(
    client: TestClient, tenant: Tenant, database: Database, monkeypatch: pytest.MonkeyPatch
):
    # Every estimated issue's day sketches come from one query; each issue must get its own
    # (a merged issue the union of its fingerprints').
    rng = random.Random(5)
    events = [
        exception_event(
            exception(type_=f"Busy{kind}Error"),
            distinct_id=f"user-{rng.randrange(60 * (kind + 1))}",
            timestamp=at(rng.uniform(0.01, 47)),
            **{"$session_id": f"s-{kind}-{rng.randrange(90 * (kind + 1))}"},
        )
        for kind in range(4)
        for _ in range(400)
    ]
    send(client, tenant, database, events)
    flt = queries.IssueFilter(start=NOW - timedelta(days=3), end=NOW)
    with database.session(write=True) as session:
        ids = list(session.scalars(queries.issue_order(tenant.project_id, flt)))
        merge_issues(session, tenant.project_id, ids[0], ids[1:2])
        session.commit()
    with database.session(write=False) as session:
        ids = list(session.scalars(queries.issue_order(tenant.project_id, flt)))
        exact = queries.summarize(session, tenant.project_id, flt, ids)
        monkeypatch.setattr(counts, "EXACT_DISTINCT_LIMIT", 1000)  # the two quiet issues, not the merged one
        mixed = queries.summarize(session, tenant.project_id, flt, ids)
        monkeypatch.setattr(counts, "EXACT_DISTINCT_LIMIT", 100)
        estimated = queries.summarize(session, tenant.project_id, flt, ids)
    assert len(ids) == 3 and sorted(s.aggregates.occurrences for s in exact) == [400, 400, 800]
    for want, got in zip(exact, mixed, strict=True):
        assert got.aggregates.estimated == (want.aggregates.occurrences == 800)
        if not got.aggregates.estimated:
            assert got.aggregates == want.aggregates
    for want, got in zip(exact, estimated, strict=True):
        assert got.aggregates.estimated and not want.aggregates.estimated
        for name in ("users", "sessions"):
            w, g = getattr(want.aggregates, name), getattr(got.aggregates, name)
            assert abs(g - w) / w < 0.06, (name, w, g)


def test_the_quietest_issues_are_counted_exactly_within_the_budget():
    events = {"a": 500, "b": 10, "c": 0, "d": 300, "e": 200}
    assert counts.counted_exactly(events, 510) == {"b", "e", "d"}
    assert counts.counted_exactly(events, 509) == {"b", "e"}
    assert counts.counted_exactly(events, 1010) == {"a", "b", "d", "e"}
    assert counts.counted_exactly({"big": 20_001}, 20_000) == set()
    assert counts.counted_exactly({}, 20_000) == set()


def test_retention_takes_deleted_events_out_of_their_buckets(
    client: TestClient, tenant: Tenant, database: Database, filled: list[tuple[str, datetime]]
):
    Retention(database, RetentionOptions(days=5, batch_size=37)).run(paced=False)
    left = stored_events(database)
    assert 0 < len(left) < len(filled)
    assert_rollups_match(database)


def test_rebuilding_from_the_events_gives_what_the_pipeline_kept(
    client: TestClient, tenant: Tenant, database: Database, filled: list[tuple[str, datetime]]
):
    with database.session(write=True) as session:
        rebuild(session.connection())
        session.commit()
    assert_rollups_match(database)


def test_past_the_exact_limit_users_and_sessions_are_estimated_closely(
    client: TestClient, tenant: Tenant, database: Database, monkeypatch: pytest.MonkeyPatch
):
    rng = random.Random(3)
    events = [
        exception_event(
            exception(type_="BusyError"),
            distinct_id=f"user-{rng.randrange(700)}",
            timestamp=at(rng.uniform(0.01, 47)),
            **{"$session_id": f"s-{rng.randrange(1500)}"},
        )
        for _ in range(2500)
    ]
    send(client, tenant, database, events)
    flt = queries.IssueFilter(start=NOW - timedelta(days=3), end=NOW)
    with database.session(write=False) as session:
        [issue_id] = list(session.scalars(queries.issue_order(tenant.project_id, flt)))
        [exact] = queries.summarize(session, tenant.project_id, flt, [issue_id])
        monkeypatch.setattr(counts, "EXACT_DISTINCT_LIMIT", 100)
        [estimated] = queries.summarize(session, tenant.project_id, flt, [issue_id])
    assert not exact.aggregates.estimated and estimated.aggregates.estimated
    assert estimated.aggregates.occurrences == exact.aggregates.occurrences == 2500
    for name in ("users", "sessions"):
        want, got = getattr(exact.aggregates, name), getattr(estimated.aggregates, name)
        assert abs(got - want) / want < 0.06, (name, want, got)
