"""Retention's decisions: cut-offs per project, which issues the cap looks at, the boundary, pacing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from trapline.retention.policy import (
    ProjectRetention,
    RetentionOptions,
    cap_boundary,
    issues_over_cap,
    pause_after,
    plan,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_each_project_gets_its_own_days_or_the_default():
    decided = plan(
        [ProjectRetention(2, retention_days=7, max_events_per_issue=100), ProjectRetention(1)],
        RetentionOptions(days=90, parked_days=30, deliveries_days=14),
        NOW,
    )
    assert [(p.project_id, p.events_before, p.max_events_per_issue) for p in decided.projects] == [
        (1, NOW - timedelta(days=90), None),
        (2, NOW - timedelta(days=7), 100),
    ]
    assert decided.parked_before == NOW - timedelta(days=30)
    assert decided.deliveries_before == NOW - timedelta(days=14)
    assert decided.counters_before == NOW - timedelta(hours=1)
    assert decided.usage_before == date(2024, 4, 27)


def test_the_cap_looks_only_at_issues_that_may_be_over_it_and_grew_since():
    small, big, capped, grown = (uuid.UUID(int=n) for n in range(4))
    totals = {small: 10, big: 11, capped: 50, grown: 51}
    looked = {(capped, 10): 50, (grown, 10): 50, (big, 20): 11}
    assert issues_over_cap(totals, 10, looked) == sorted([big, grown])
    # Another cap than the one an issue was capped to: looked at again.
    assert issues_over_cap(totals, 5, looked) == sorted([small, big, capped, grown])


def test_the_boundary_is_the_newest_event_past_the_cap_over_all_fingerprints():
    t = [NOW - timedelta(days=n) for n in range(10)]
    a = [(t[0], 9), (t[3], 4), (t[5], 2)]
    b = [(t[1], 8), (t[3], 6), (t[4], 3)]
    assert cap_boundary([a, b], 3) == (t[3], 4)  # t[3] twice: the higher id stays
    assert cap_boundary([a, b], 6) is None
    assert cap_boundary([], 1) is None
    assert cap_boundary([a], 0) == (t[0], 9)


def test_steps_take_at_most_their_share_of_the_time():
    assert pause_after(0.05, 0.2) == pytest.approx(0.2)
    assert pause_after(0.05, 1.0) == 0.0
