"""Autocapture controls as pure decisions: blocklist, triggers, match type, sampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trapline.autocapture.controls import (
    BLOCKED_URL,
    NOT_SAMPLED,
    NOT_TRIGGERED,
    URL_SIGNAL,
    Controls,
    decide,
    event_signal,
    in_sample,
    signals_of,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def controls(**settings: Any) -> Controls:
    base: dict[str, Any] = {
        "match_type": "all",
        "sample_rate": 1.0,
        "linked_feature_flag": None,
        "event_triggers": [],
        "url_triggers": [],
        "url_blocklist": [],
    }
    return Controls.from_settings(**{**base, **settings})


def browser(**properties: Any) -> dict[str, Any]:
    return {"$lib": "web", "$session_id": "s1", "$current_url": "https://shop.example/cart", **properties}


def verdict(c: Controls, props: dict[str, Any], *, handled: bool = False, signals: Any = None) -> str | None:
    found = decide(c, props, handled=handled, timestamp=NOW, signals=signals or {})
    return None if found is None else found.reason


def test_no_controls_keep_everything():
    assert verdict(controls(), browser()) is None


def test_the_blocklist_drops_unhandled_browser_exceptions_on_matching_urls():
    blocked = controls(url_blocklist=[{"url": r"/admin", "matching": "regex"}])
    assert verdict(blocked, browser(**{"$current_url": "https://shop.example/admin/users"})) == BLOCKED_URL
    assert verdict(blocked, browser()) is None


def test_manual_captures_and_other_sdks_are_never_affected():
    blocked = controls(url_blocklist=["."])
    assert verdict(blocked, browser(), handled=True) is None
    assert verdict(blocked, browser(**{"$lib": "posthog-python"})) is None


def test_a_url_trigger_needs_the_session_to_have_been_on_a_matching_url():
    triggered = controls(url_triggers=[{"url": r"/checkout", "matching": "regex"}])
    assert verdict(triggered, browser()) == NOT_TRIGGERED
    assert verdict(triggered, browser(), signals={URL_SIGNAL: NOW - timedelta(minutes=1)}) is None
    assert verdict(triggered, browser(**{"$current_url": "https://shop.example/checkout"})) is None
    # A visit after the exception does not count for it.
    assert verdict(triggered, browser(), signals={URL_SIGNAL: NOW + timedelta(minutes=1)}) == NOT_TRIGGERED


def test_an_event_trigger_needs_the_event_earlier_in_the_session():
    triggered = controls(event_triggers=["signup"])
    assert verdict(triggered, browser()) == NOT_TRIGGERED
    assert verdict(triggered, browser(), signals={event_signal("signup"): NOW - timedelta(seconds=5)}) is None
    assert verdict(triggered, browser(), signals={event_signal("other"): NOW}) == NOT_TRIGGERED


@pytest.mark.parametrize(
    ("flag", "props", "kept"),
    [
        ({"key": "beta"}, {"$feature/beta": True}, True),
        ({"key": "beta"}, {"$feature/beta": "variant-a"}, True),
        ({"key": "beta"}, {"$feature/beta": False}, False),
        ({"key": "beta"}, {"$active_feature_flags": ["beta"]}, True),
        ({"key": "beta"}, {}, False),
        ({"key": "beta", "variant": "b"}, {"$feature/beta": "b"}, True),
        ({"key": "beta", "variant": "b"}, {"$feature/beta": "a"}, False),
        ({"key": "beta", "variant": "b"}, {"$feature/beta": True}, False),
    ],
)
def test_a_linked_flag(flag: dict[str, Any], props: dict[str, Any], kept: bool):
    assert (verdict(controls(linked_feature_flag=flag), browser(**props)) is None) is kept


def test_the_sample_rate_keeps_a_stable_share_of_sessions():
    sampled = controls(sample_rate=0.3)
    kept = [verdict(sampled, browser(**{"$session_id": f"session-{n}"})) is None for n in range(2000)]
    assert 0.25 < sum(kept) / len(kept) < 0.35
    assert verdict(sampled, browser(**{"$session_id": "session-7"})) == verdict(
        sampled, browser(**{"$session_id": "session-7"})
    )
    assert {verdict(sampled, browser(**{"$session_id": f"session-{n}"})) for n in range(50)} <= {None, NOT_SAMPLED}
    assert in_sample(0.0, "x") is False and in_sample(1.0, "x") is True


def test_all_needs_every_trigger_and_any_one():
    settings: dict[str, Any] = {"event_triggers": ["signup"], "linked_feature_flag": {"key": "beta"}}
    only_flag = browser(**{"$feature/beta": True})
    assert verdict(controls(match_type="all", **settings), only_flag) == NOT_TRIGGERED
    assert verdict(controls(match_type="any", **settings), only_flag) is None
    signals = {event_signal("signup"): NOW - timedelta(seconds=1)}
    assert verdict(controls(match_type="all", **settings), only_flag, signals=signals) is None
    assert verdict(controls(match_type="any", **settings), browser()) == NOT_TRIGGERED


def test_bad_patterns_are_ignored_not_fatal():
    lenient = controls(url_blocklist=["(unclosed", {"url": 5}, {"nope": 1}, r"/admin"])
    assert len(lenient.url_blocklist) == 1
    assert verdict(lenient, browser(**{"$current_url": "https://x/admin"})) == BLOCKED_URL


def test_signals_of_an_event():
    watching = controls(url_triggers=[{"url": "/checkout"}], event_triggers=["signup"])
    assert signals_of(watching, {"event": "signup", "properties": {"$current_url": "https://x/checkout"}}) == [
        URL_SIGNAL,
        event_signal("signup"),
    ]
    assert signals_of(watching, {"event": "$pageview", "properties": {"$current_url": "https://x/"}}) == []
    assert watching.records_signals and not controls(sample_rate=0.5).records_signals
