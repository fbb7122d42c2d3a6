"""Grouping: which fingerprint, and so which issue, each event belongs to.

Precedence, as in cymbal: the first matching grouping rule (``custom-rule:<id>``, with the
rule's assignee), else the automatic fingerprint of the resolved exception list; then a
client ``$exception_fingerprint`` replaces either, and drops the rule's assignee. The value
before the client's override is kept as the proposed fingerprint. A Sentry fingerprint with
``{{ default }}`` parts (``$sentry_fingerprint``) is the computed one split by the others.
"""

from __future__ import annotations

from typing import Any, cast

from trapline.pipeline.batch import Item
from trapline.pipeline.fingerprint import custom_rule, generate_fingerprint, manual, with_default
from trapline.pipeline.rules import ProjectRules
from trapline.rules.evaluate import Subject

__all__ = ["group"]


def group(items: list[Item], rules: dict[int, ProjectRules]) -> None:
    for item in items:
        if not item.live or item.exception is None:
            continue
        project_rules = rules[item.project_id]
        rule = (
            project_rules.first_match(project_rules.grouping, Subject(properties=item.output))
            if project_rules.grouping
            else None
        )
        if rule is not None:
            proposed = custom_rule(rule.id)
            item.grouping_rule_id = rule.id
            item.rule_assignee = rule.assignee
        else:
            proposed = generate_fingerprint(item.exception_list)
        final = proposed
        if item.exception.fingerprint:  # an empty one would lump every such event together
            final = manual(item.exception.fingerprint)
            item.rule_assignee = None
        elif item.exception.fingerprint_parts:
            final = with_default(item.exception.fingerprint_parts, proposed)
            item.rule_assignee = None
        item.fingerprint = final.value
        item.proposed_fingerprint = proposed.value
        # Not copied: frame parts are shared by the events of a stack (see fingerprint._v1_stack).
        item.fingerprint_record = cast(list[dict[str, Any]], list(final.record))
