"""The properties a processed ``$exception`` event is stored with (cymbal's ``OutputErrProps``).

The event keeps every property the client sent, except the keys the pipeline owns: a client
cannot set its own ``$exception_issue_id`` or ``$exception_types``, whatever it sends. Those
are computed here and by the grouping and linking stages.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from trapline.pipeline.exceptions import ExceptionInfo, search_properties

__all__ = ["RESERVED", "base_output", "finish_output", "grouped_output"]

# Written only by the pipeline; client values of these keys are dropped.
RESERVED = frozenset(
    {
        "$exception_list",
        "$exception_fingerprint",
        "$exception_proposed_fingerprint",
        "$exception_fingerprint_record",
        "$exception_issue_id",
        "$exception_handled",
        "$exception_releases",
        "$exception_types",
        "$exception_values",
        "$exception_sources",
        "$exception_functions",
        "$cymbal_errors",
    }
)


def base_output(
    properties: Mapping[str, Any],
    exception_list: Sequence[ExceptionInfo],
    *,
    handled: bool,
    releases: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event's properties once its stacks are resolved: what rules are evaluated against."""
    output = {key: value for key, value in properties.items() if key not in RESERVED}
    output["$exception_list"] = list(exception_list)
    output["$exception_handled"] = handled
    if releases:
        output["$exception_releases"] = dict(releases)
    output.update(search_properties(exception_list))
    return output


def grouped_output(
    output: dict[str, Any],
    *,
    fingerprint: str,
    proposed_fingerprint: str,
    record: Sequence[Mapping[str, Any]],
    errors: Sequence[str],
) -> None:
    """Add what grouping decided (all but the issue, which linking decides)."""
    output["$exception_fingerprint"] = fingerprint
    output["$exception_proposed_fingerprint"] = proposed_fingerprint
    output["$exception_fingerprint_record"] = list(record)
    if errors:
        output["$cymbal_errors"] = list(errors)


def finish_output(
    output: dict[str, Any],
    *,
    fingerprint: str,
    proposed_fingerprint: str,
    record: Sequence[Mapping[str, Any]],
    issue_id: uuid.UUID,
    errors: Sequence[str],
) -> None:
    """Add what grouping and linking decided."""
    grouped_output(
        output, fingerprint=fingerprint, proposed_fingerprint=proposed_fingerprint, record=record, errors=errors
    )
    output["$exception_issue_id"] = str(issue_id)
