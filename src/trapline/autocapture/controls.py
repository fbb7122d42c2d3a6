"""Autocapture controls, enforced on the server: which autocaptured browser exceptions to keep.

posthog-js 1.449 does not act on PostHog's autocapture controls, so Trapline applies them to
the events it receives. They only concern exceptions the browser SDK caught by itself
(``$lib`` is ``web`` and the exception is unhandled); a ``captureException`` call is never
dropped by them.

* ``url_blocklist``: an exception whose ``$current_url`` matches is dropped.
* Triggers, when any is configured, decide per session (``$session_id``):
  ``url_triggers`` (the session was on a matching URL), ``event_triggers`` (the session sent
  an event of that name), ``linked_feature_flag`` (the event carries the flag, with the
  variant when one is set) and ``sample_rate`` (a share of sessions, chosen by a hash of the
  session id so the same session always gets the same answer). ``match_type`` ``all`` needs
  every configured trigger, ``any`` one of them.

URL and event triggers need what the session did before the exception: capture records, per
session, when it first satisfied each trigger (``signals_of``), and the worker compares those
times with the exception's (``decide``).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from trapline.autocapture.models import AutocaptureControls
from trapline.db.engine import Database
from trapline.events.models import SessionSignal

__all__ = [
    "BLOCKED_URL",
    "NOT_SAMPLED",
    "NOT_TRIGGERED",
    "URL_SIGNAL",
    "Controls",
    "ControlsCache",
    "decide",
    "event_signal",
    "in_sample",
    "load_controls",
    "load_signals",
    "prune_signals",
    "signals_of",
]

BLOCKED_URL = "autocapture_url_blocked"
NOT_TRIGGERED = "autocapture_not_triggered"
NOT_SAMPLED = "autocapture_not_sampled"
URL_SIGNAL = "url"
_SAMPLE_SCALE = 2**32


def event_signal(name: str) -> str:
    return f"event:{name}"


@dataclass(frozen=True)
class Controls:
    """A project's web autocapture controls, compiled."""

    match_type: str = "all"
    sample_rate: float = 1.0
    flag_key: str | None = None
    flag_variant: str | None = None
    event_triggers: frozenset[str] = frozenset()
    url_triggers: tuple[re.Pattern[str], ...] = ()
    url_blocklist: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_settings(
        cls,
        *,
        match_type: str,
        sample_rate: float,
        linked_feature_flag: Any,
        event_triggers: Iterable[Any],
        url_triggers: Iterable[Any],
        url_blocklist: Iterable[Any],
    ) -> Controls:
        flag = linked_feature_flag if isinstance(linked_feature_flag, Mapping) else {}
        key = flag.get("key") if isinstance(flag.get("key"), str) and flag.get("key") else None
        variant = flag.get("variant") if isinstance(flag.get("variant"), str) and flag.get("variant") else None
        return cls(
            match_type="any" if match_type == "any" else "all",
            sample_rate=min(max(float(sample_rate), 0.0), 1.0),
            flag_key=key,
            flag_variant=variant,
            event_triggers=frozenset(name for name in event_triggers if isinstance(name, str) and name),
            url_triggers=_patterns(url_triggers),
            url_blocklist=_patterns(url_blocklist),
        )

    @property
    def records_signals(self) -> bool:
        """Whether capture must note what sessions do (URL or event triggers are set)."""
        return bool(self.event_triggers or self.url_triggers)

    @property
    def active(self) -> bool:
        return bool(self.url_blocklist or self.has_triggers)

    @property
    def has_triggers(self) -> bool:
        return bool(self.event_triggers or self.url_triggers or self.flag_key or self.sample_rate < 1)


def _patterns(entries: Iterable[Any]) -> tuple[re.Pattern[str], ...]:
    """PostHog's ``{"url", "matching": "regex"}`` entries (a bare string also works) as regexes.

    An entry that is not a valid regex is left out: a typo must not block or let through
    every exception. The API stores what it is given, so this is the place to be lenient.
    """
    compiled: list[re.Pattern[str]] = []
    for entry in entries:
        pattern = entry.get("url") if isinstance(entry, Mapping) else entry
        if not isinstance(pattern, str) or not pattern:
            continue
        try:
            compiled.append(re.compile(pattern))
        except re.error:
            continue
    return tuple(compiled)


def _matches(patterns: Iterable[re.Pattern[str]], url: Any) -> bool:
    return isinstance(url, str) and any(pattern.search(url) for pattern in patterns)


def signals_of(controls: Controls, event: Mapping[str, Any]) -> list[str]:
    """The triggers one captured event satisfies for its session."""
    found: list[str] = []
    properties = event.get("properties")
    url = properties.get("$current_url") if isinstance(properties, Mapping) else None
    if _matches(controls.url_triggers, url):
        found.append(URL_SIGNAL)
    name = event.get("event")
    if isinstance(name, str) and name in controls.event_triggers:
        found.append(event_signal(name))
    return found


def in_sample(rate: float, session: str) -> bool:
    """Whether a session is in the sampled share: a hash of its id, so always the same answer."""
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    digest = int.from_bytes(hashlib.sha256(session.encode("utf-8")).digest()[:4], "big")
    return digest < rate * _SAMPLE_SCALE


def _flag_on(controls: Controls, properties: Mapping[str, Any]) -> bool:
    assert controls.flag_key is not None
    value = properties.get(f"$feature/{controls.flag_key}")
    if value is None:
        active = properties.get("$active_feature_flags")
        if isinstance(active, list) and controls.flag_key in active:
            value = True
    if controls.flag_variant is not None:
        return value == controls.flag_variant
    return value is True or (isinstance(value, str) and value != "")


@dataclass(frozen=True)
class Verdict:
    reason: str
    detail: str


def decide(
    controls: Controls,
    properties: Mapping[str, Any],
    *,
    handled: bool,
    timestamp: datetime,
    signals: Mapping[str, datetime],
) -> Verdict | None:
    """Why the controls drop this exception event, or None to keep it.

    ``signals`` are the times its session first satisfied each trigger (``signals_of``).
    """
    if handled or properties.get("$lib") != "web" or not controls.active:
        return None
    url = properties.get("$current_url")
    if _matches(controls.url_blocklist, url):
        return Verdict(BLOCKED_URL, f"{url} is on the autocapture URL blocklist")
    if not controls.has_triggers:
        return None
    session = properties.get("$session_id")
    session_key = session if isinstance(session, str) and session else str(properties.get("distinct_id", ""))
    results: dict[str, bool] = {}
    if controls.url_triggers:
        seen = signals.get(URL_SIGNAL)
        results["url trigger"] = _matches(controls.url_triggers, url) or (seen is not None and seen <= timestamp)
    if controls.event_triggers:
        results["event trigger"] = any(
            (at := signals.get(event_signal(name))) is not None and at <= timestamp for name in controls.event_triggers
        )
    if controls.flag_key is not None:
        results["linked flag"] = _flag_on(controls, properties)
    if controls.sample_rate < 1:
        results["sample rate"] = in_sample(controls.sample_rate, session_key)
    passed = any(results.values()) if controls.match_type == "any" else all(results.values())
    if passed:
        return None
    failed = [name for name, ok in results.items() if not ok]
    reason = NOT_SAMPLED if failed == ["sample rate"] else NOT_TRIGGERED
    return Verdict(reason, f"{controls.match_type} of the triggers needed; not met: {', '.join(failed)}")


def load_controls(session: Session, project_ids: Iterable[int]) -> dict[int, Controls]:
    """The web autocapture controls of projects that have any."""
    ids = sorted(set(project_ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(AutocaptureControls).where(AutocaptureControls.project_id.in_(ids), AutocaptureControls.library == "web")
    )
    return {
        row.project_id: Controls.from_settings(
            match_type=row.match_type,
            sample_rate=float(row.sample_rate),
            linked_feature_flag=row.linked_feature_flag,
            event_triggers=row.event_triggers or [],
            url_triggers=row.url_triggers or [],
            url_blocklist=row.url_blocklist or [],
        )
        for row in rows
    }


class ControlsCache:
    """Controls by project for capture, which needs them on every request: read every few seconds."""

    def __init__(self, db: Database, *, ttl: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl
        self._entries: dict[int, tuple[Controls | None, float]] = {}

    def fresh(self, project_id: int) -> bool:
        """Whether ``get`` answers from memory (callers on an event loop read otherwise in a thread)."""
        hit = self._entries.get(project_id)
        return hit is not None and hit[1] > time.monotonic()

    def get(self, project_id: int) -> Controls | None:
        now = time.monotonic()
        hit = self._entries.get(project_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._db.session(write=False) as session:
            found = load_controls(session, [project_id]).get(project_id)
        self._entries[project_id] = (found, now + self._ttl)
        return found

    def clear(self) -> None:
        self._entries.clear()


def load_signals(session: Session, wanted: Mapping[int, Iterable[str]]) -> dict[tuple[int, str], dict[str, datetime]]:
    """What the given sessions did (signal → first time), by (project, session)."""
    found: dict[tuple[int, str], dict[str, datetime]] = {}
    for project_id, sessions in wanted.items():
        ids = sorted(set(sessions))
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(SessionSignal.session_id, SessionSignal.signal, SessionSignal.first_at).where(
                    SessionSignal.project_id == project_id, SessionSignal.session_id.in_(ids[start : start + 500])
                )
            )
            for session_id, signal, first_at in rows:
                found.setdefault((project_id, session_id), {})[signal] = first_at
    return found


def prune_signals(db: Database, now: datetime) -> int:
    """Forget what sessions did once they are over."""
    with db.session(write=True) as session:
        removed = session.execute(delete(SessionSignal).where(SessionSignal.expires_at < now)).rowcount  # type: ignore[attr-defined]
        session.commit()
    return int(removed or 0)
