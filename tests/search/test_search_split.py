"""A search answered with the fingerprints' summaries lists, orders and counts exactly what
reading every event's text would: the summaries only decide which events need reading."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import Tenant
from tests.issue_data import exception, make_event, make_issue
from tests.search.support import assert_summaries_sound
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.issues import queries
from trapline.issues.queries import IssueFilter
from trapline.retention import Retention, RetentionOptions
from trapline.search import record

NOW = datetime.now(UTC).replace(microsecond=0)
_TYPES = ["KeyError", "TypeError", "ValueError", "ChunkLoadError"]
_VALUES = ["missing key total", "cannot read properties of undefined", "bad total", "loading chunk 7 failed"]
_EMAILS = [None, "ada@example.com", "bob@example.org"]
SEARCHES = ["total", "key", "keyerror total", "undefined", "chunk", "ada@", "example", "zz", "nothing-like-it",
            '"missing key"', "error"]  # fmt: skip


@pytest.fixture
def mixed(database: Database, tenant: Tenant) -> None:
    """Twelve issues of two fingerprints each, whose events' texts agree in some fingerprints
    (every event matches or none does) and differ in others (some events match)."""
    rng = random.Random(11)
    with database.session(write=True) as session:
        for n in range(12):
            issue = make_issue(session, tenant.project_id, [f"fp-{n}-a", f"fp-{n}-b"])
            for fingerprint in (f"fp-{n}-a", f"fp-{n}-b"):
                varied = rng.random() < 0.5
                kind = rng.randrange(4)
                for _ in range(rng.randrange(1, 9)):
                    k = rng.randrange(4) if varied else kind
                    make_event(
                        session, tenant.project_id, fingerprint,
                        timestamp=NOW - timedelta(hours=rng.uniform(0.5, 24 * 20)),
                        distinct_id=f"u{rng.randrange(6)}", session_id=f"s{rng.randrange(9)}",
                        exceptions=[exception(_TYPES[k], _VALUES[k if varied else (k + n) % 4])],
                        email=rng.choice(_EMAILS), commit=False,
                    )  # fmt: skip
            del issue
        session.commit()


def _oracle(database: Database, tenant: Tenant, flt: IssueFilter) -> dict[object, tuple[int, int, int]]:
    """Per issue, (events, users, sessions) of the matching events, from their texts."""
    found: dict[object, list[tuple[str, str | None]]] = defaultdict(list)
    with database.session(write=False) as session:
        rows = session.execute(
            select(ExceptionEvent.issue_id, ExceptionEvent.search_text, ExceptionEvent.timestamp,
                   ExceptionEvent.distinct_id, ExceptionEvent.session_id)
            .where(ExceptionEvent.project_id == tenant.project_id)
        )  # fmt: skip
        for issue_id, text, timestamp, user, session_id in rows:
            if (flt.start and timestamp < flt.start) or (flt.end and timestamp > flt.end):
                continue
            if all(token in (text or "") for token in flt.search):
                found[issue_id].append((user, session_id))
    return {
        issue: (len(seen), len({u for u, _ in seen}), len({s for _, s in seen if s})) for issue, seen in found.items()
    }


@pytest.mark.parametrize("days", [3, 30])
@pytest.mark.parametrize("query", SEARCHES)
def test_searches_list_and_count_what_the_texts_match(
    mixed: None, database: Database, tenant: Tenant, query: str, days: int
):
    # From midnight: ordering by occurrences counts whole touched days (documented), which would
    # also count the events of the first day before a start inside it, and the order could then
    # differ from the events' exact counts depending on the time of day the test runs.
    start = (NOW - timedelta(days=days)).replace(hour=0, minute=0, second=0)
    flt = IssueFilter(start=start, end=NOW, search=queries.search_tokens(query))
    want = _oracle(database, tenant, flt)
    with database.session(write=False) as session:
        for order_by in ("last_seen", "occurrences", "first_seen", "users"):
            summarised = list(session.scalars(queries.issue_order(tenant.project_id, flt, order_by=order_by,
                                                                  session=session)))  # fmt: skip
            scanned = list(session.scalars(queries.issue_order(tenant.project_id, flt, order_by=order_by)))
            assert summarised == scanned, order_by
        assert set(summarised) == set(want)
        got = queries.summarize(session, tenant.project_id, flt, summarised)
    assert {s.issue.id: (s.aggregates.occurrences, s.aggregates.users, s.aggregates.sessions) for s in got} == want


def test_summaries_stay_sound_through_retention_and_rebuild(mixed: None, database: Database, tenant: Tenant):
    assert_summaries_sound(database)
    Retention(database, RetentionOptions(days=7)).run(paced=False)
    assert_summaries_sound(database)  # deleting events leaves filters wider and commons true
    flt = IssueFilter(search=["total"])
    with database.session(write=False) as session:
        before = list(session.scalars(queries.issue_order(tenant.project_id, flt, session=session)))
    with database.session(write=True) as session:
        record.rebuild(session.connection(), tenant.project_id)
        session.commit()
    assert_summaries_sound(database)
    with database.session(write=False) as session:
        assert list(session.scalars(queries.issue_order(tenant.project_id, flt, session=session))) == before


def test_the_fixture_has_fingerprints_every_event_of_which_matches_and_some_of_which_do(
    mixed: None, database: Database, tenant: Tenant
):
    with database.session(write=False) as session:
        split = queries.search_split(session, tenant.project_id, IssueFilter(search=["total"]))
    assert split is not None and split.whole and split.partial


@pytest.fixture
def uniform(database: Database, tenant: Tenant) -> None:
    """Issues of two fingerprints of different kinds, every event of a fingerprint of its
    kind: a search for a kind matches some fingerprints in all their events and others in none."""
    rng = random.Random(5)
    with database.session(write=True) as session:
        for n in range(30):
            make_issue(session, tenant.project_id, [f"fp-{n}-a", f"fp-{n}-b"])
            for fingerprint in (f"fp-{n}-a", f"fp-{n}-b"):
                kind = rng.randrange(4)
                for _ in range(rng.randrange(1, 5)):
                    make_event(
                        session, tenant.project_id, fingerprint,
                        # Whole minutes: issues and fingerprints tie on their last seen.
                        timestamp=NOW - timedelta(minutes=5 * rng.randrange(1, 12 * 24 * 9)),
                        exceptions=[exception(_TYPES[kind], _VALUES[kind])], commit=False,
                    )  # fmt: skip
        session.commit()


@pytest.mark.parametrize("query", ["keyerror", "typeerror cannot", "chunk", "nothing-like-it"])
def test_a_search_matching_whole_fingerprints_is_read_latest_first(
    uniform: None, database: Database, tenant: Tenant, query: str
):
    flt = IssueFilter(start=NOW - timedelta(days=7), end=NOW, search=queries.search_tokens(query))
    with database.session(write=False) as session:
        split = queries.search_split(session, tenant.project_id, flt)
        assert split is not None and not split.partial
        fast = queries.issue_order(tenant.project_id, flt, session=session)
        assert "newer_fingerprint" in str(fast)  # the recent index, each issue by its latest match
        scanned = list(session.scalars(queries.issue_order(tenant.project_id, flt)))
        assert list(session.scalars(fast)) == scanned
        assert bool(scanned) == (query != "nothing-like-it")
        for offset in (0, 3, 9):
            assert list(session.scalars(fast.limit(5).offset(offset))) == scanned[offset : offset + 5]
