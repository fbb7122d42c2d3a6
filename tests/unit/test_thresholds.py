"""Frequency and users alerts: once per crossing, or once per interval while above."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trapline.alerts.thresholds import ThresholdState, decide

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_fires_when_the_count_rises_above_the_threshold():
    fire, state = decide(before=5, after=6, threshold=5, state=ThresholdState(), now=NOW)
    assert fire and state == ThresholdState(True, NOW)


def test_at_the_threshold_is_not_above_it():
    fire, state = decide(before=4, after=5, threshold=5, state=ThresholdState(), now=NOW)
    assert not fire and state == ThresholdState(False, None)


def test_stays_quiet_while_above():
    fire, state = decide(20, 30, 5, ThresholdState(True, NOW), NOW + timedelta(minutes=1))
    assert not fire and state == ThresholdState(True, NOW)


def test_fires_again_after_falling_back_between_batches():
    # Above at the last look, but the events left the window before this batch came.
    fire, state = decide(2, 40, 5, ThresholdState(True, NOW), NOW + timedelta(hours=2))
    assert fire and state.last_fired_at == NOW + timedelta(hours=2)


def test_falling_back_rearms():
    fire, state = decide(10, 3, 5, ThresholdState(True, NOW), NOW)
    assert not fire and state == ThresholdState(False, NOW)


def test_an_alert_made_while_above_fires_at_its_first_look():
    fire, _ = decide(100, 101, 5, ThresholdState(), NOW)
    assert fire


def test_with_an_interval_it_repeats_while_above():
    state = ThresholdState(True, NOW)
    interval = timedelta(minutes=15)
    assert not decide(10, 11, 5, state, NOW + timedelta(minutes=14), interval)[0]
    fire, again = decide(10, 11, 5, state, NOW + timedelta(minutes=15), interval)
    assert fire and again.last_fired_at == NOW + timedelta(minutes=15)
