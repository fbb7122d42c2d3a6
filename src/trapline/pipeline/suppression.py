"""Suppression rules: matching events are dropped before they are grouped.

A rule drops the events it matches with probability ``sampling_rate``, decided by the event's
uuid rather than by chance: the same event, retried by an SDK or reprocessed after a crash,
gets the same answer every time (cymbal's ``should_suppress``).
"""

from __future__ import annotations

import uuid

from trapline.pipeline.batch import Item
from trapline.pipeline.rules import ProjectRules
from trapline.rules.evaluate import Subject

__all__ = ["SUPPRESSED", "should_suppress", "suppress"]

SUPPRESSED = "suppressed_by_rule"
# Sampling is decided in steps of 1/10,000.
_SAMPLE_SCALE = 10_000


def should_suppress(sampling_rate: float, event_uuid: uuid.UUID) -> bool:
    """Whether a matching event is dropped: all at 1, none at 0, else by the uuid's number."""
    if sampling_rate >= 1:
        return True
    if sampling_rate <= 0:
        return False
    return event_uuid.int % _SAMPLE_SCALE < int(sampling_rate * _SAMPLE_SCALE)


def suppress(items: list[Item], rules: dict[int, ProjectRules]) -> None:
    """Reject the live items that the first matching suppression rule drops."""
    for item in items:
        if not item.live:
            continue
        project_rules = rules[item.project_id]
        if not project_rules.suppression:
            continue
        rule = project_rules.first_match(project_rules.suppression, Subject(properties=item.output))
        if rule is not None and should_suppress(rule.sampling_rate, item.uuid):
            item.reject(SUPPRESSED, f"suppression rule {rule.id}")
