"""Cymbal's spike detector, bucket by bucket (cases read off its algorithm, in our numbers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trapline.alerts.spikes import (
    SpikeSettings,
    bucket_start,
    bucket_starts,
    find_spikes,
    is_spiking,
    issue_baseline,
    project_baseline,
)

ISSUE = uuid.UUID(int=1)
OLD = SpikeSettings(threshold=1)  # the detector before PostHog added its minimum


def test_buckets_are_five_minutes_floored_in_utc():
    assert bucket_start(datetime(2026, 12, 16, 12, 34, 56, tzinfo=UTC)) == datetime(2026, 12, 16, 12, 30, tzinfo=UTC)
    assert bucket_start(datetime(2026, 12, 16, 12, 35, tzinfo=UTC)) == datetime(2026, 12, 16, 12, 35, tzinfo=UTC)
    starts = bucket_starts(datetime(2026, 12, 16, 0, 2, tzinfo=UTC))
    assert len(starts) == 12
    assert starts[0] == datetime(2026, 12, 16, 0, 0, tzinfo=UTC)
    assert starts[-1] == datetime(2026, 12, 15, 23, 5, tzinfo=UTC)


def test_an_issue_with_history_is_measured_against_its_own_non_empty_buckets():
    # 600 now, 10 in the one earlier bucket that had events: baseline 10, 600 > 100.
    [spike] = find_spikes({ISSUE: [600, 10, *[None] * 10]}, [100] * 12, [1] * 12, SpikeSettings())
    assert (spike.computed_baseline, spike.current_bucket_value) == (10.0, 600)
    assert issue_baseline([10, None, 20, None], 99.0) == 15.0


def test_steady_traffic_is_not_a_spike():
    assert find_spikes({ISSUE: [10] * 12}, [100] * 12, [1] * 12, OLD) == []


def test_an_issue_without_history_falls_back_to_the_projects_rate_per_issue():
    # Project: 20/2, 15/3, 12/4, 8/2 → rates 10, 5, 3, 4 → 5.5; 600 > 55.
    [spike] = find_spikes(
        {ISSUE: [600, *[None] * 11]}, [20, 15, 12, 8, *[None] * 8], [2, 3, 4, 2, *[0] * 8], SpikeSettings()
    )
    assert spike.computed_baseline == 5.5
    assert project_baseline([None, 5], [0, 0]) == 0.0


def test_the_minimum_threshold_holds_back_small_counts():
    assert not is_spiking(499, 0.0, SpikeSettings())
    assert is_spiking(500, 0.0, SpikeSettings())
    assert is_spiking(1, 0.0, OLD)  # baseline 0: any event spikes, as the older detector did
    assert not is_spiking(100, 10.0, OLD)  # not more than 10 times
    assert is_spiking(101, 10.0, OLD)


@pytest.mark.parametrize("multiplier", [1, 3, 10])
def test_the_multiplier_is_the_projects(multiplier: int):
    settings = SpikeSettings(multiplier=multiplier, threshold=1)
    assert is_spiking(10 * multiplier + 1, 10.0, settings)
    assert not is_spiking(10 * multiplier, 10.0, settings)


@given(
    current=st.integers(0, 10_000),
    history=st.lists(st.one_of(st.none(), st.integers(1, 1000)), min_size=11, max_size=11),
)
def test_a_spike_is_always_above_threshold_and_multiple(current: int, history: list[int | None]):
    settings = SpikeSettings(threshold=5)
    spikes = find_spikes({ISSUE: [current, *history]}, [None] * 12, [0] * 12, settings)
    for spike in spikes:
        assert spike.current_bucket_value >= 5
        assert spike.current_bucket_value > spike.computed_baseline * 10
