"""An event's exceptions, frames and fingerprint record, shaped for the issue page (pure).

The page shows ``$exception_list`` the way PostHog's issue page does: the exceptions in stored
order (the caught, outermost one first, each cause after the exception it caused: that is how
posthog-python, posthog-js and Trapline's Sentry mapping all order them), and each stack's
frames as stored, the oldest call first and the crash site last, with a switch to reverse them.
Only in-app frames are shown unless all are asked for; a stack with no in-app frame at all is
shown whole, since hiding every frame would show nothing.

Source context never travels on events: it is in the ``stack_frame`` table keyed by the frame's
raw id. A frame without a stored context falls back to the raw frame the event kept because it
failed to resolve (``unresolved_frames``), which for Python, Ruby and Node frames carries its
own lines.

Everything here reads stored JSON defensively: events come from clients, and an odd value must
show as it is, never fail the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from trapline.pipeline.frames import WireError, raw_frame_context

__all__ = [
    "CodeLine",
    "ExceptionView",
    "FrameView",
    "RecordLine",
    "chain_label",
    "chain_summary",
    "context_lines",
    "exception_views",
    "fingerprint_origin",
    "frame_keys",
    "record_lines",
    "show_value",
]

# A variable or property value longer than this is cut for the page (the full one is in the
# event's JSON, which the property table shows).
_VALUE_MAX_CHARS = 2_000

# How posthog-python names the link from an exception to the next one in the list
# (mechanism.source); everything else after the first is a cause.
_CHAIN_LABELS = {
    "cause": "Caused by",
    "context": "Raised while handling",
    "member": "Member of the group",
}

_PIECE_NAMES = {
    "Exception Type": "type",
    "Exception Message": "message",
    "Source file name": "file",
    "Module name": "module",
    "Resolved function name": "function",
    "Mangled function name": "mangled name",
    "Line number": "line",
    "Column number": "column",
    "Language": "language",
}


@dataclass(frozen=True)
class CodeLine:
    number: int
    text: str
    current: bool = False


@dataclass(frozen=True)
class FrameView:
    index: int  # position in the stored stack, 0 = oldest call
    raw_id: str
    name: str
    mangled_name: str | None  # only when it differs from the name shown
    source: str | None
    line: int | None
    column: int | None
    module: str | None
    lang: str | None
    in_app: bool
    resolved: bool
    failure: str | None
    synthetic: bool
    suspicious: bool
    grouped: bool  # one of the frames the fingerprint was computed from
    variables: list[tuple[str, str]] = field(default_factory=list)
    context: list[CodeLine] = field(default_factory=list)
    raw: str | None = None  # the raw frame kept for reprocessing, as JSON

    @property
    def location(self) -> str:
        # A frame with no file (Java de-obfuscated from a mapping without source file names)
        # is placed by its module, as a JVM stack trace places it by its class.
        where = self.source or self.module or ""
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return where

    @property
    def expandable(self) -> bool:
        return bool(self.context or self.variables or self.raw)


@dataclass(frozen=True)
class ExceptionView:
    index: int
    id: str | None
    type: str
    value: str
    handled: bool | None
    mechanism: str | None
    synthetic: bool
    chain: str | None  # how it relates to the exception above it; None for the first
    has_stack: bool
    resolved_stack: bool
    frames: list[FrameView]
    total_frames: int
    in_app_frames: int

    @property
    def hidden_frames(self) -> int:
        return self.total_frames - len(self.frames)


@dataclass(frozen=True)
class RecordLine:
    """One part of a fingerprint record, in words: what was hashed, from where."""

    kind: str  # exception, frame, custom, manual, unknown
    subject: str
    pieces: list[str]
    rule_id: str | None = None


# --- small readers ----------------------------------------------------------------------------


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: object, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _mappings(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def show_value(value: object) -> str:
    """A value as text for a table cell: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            text = repr(value)
    return text if len(text) <= _VALUE_MAX_CHARS else text[:_VALUE_MAX_CHARS] + "…"


def _frames_of(exception: Mapping[str, Any]) -> tuple[bool, bool, list[Mapping[str, Any]]]:
    """(has a stack, it is resolved, its frames)."""
    stack = exception.get("stacktrace")
    if not isinstance(stack, Mapping):
        return False, False, []
    return True, stack.get("type") == "resolved", _mappings(stack.get("frames"))


def frame_keys(exception_list: object) -> list[tuple[str, int]]:
    """The (raw id hash, part) of every frame of the list: how ``stack_frame`` is keyed."""
    keys: dict[tuple[str, int], None] = {}
    for exception in _mappings(exception_list):
        for frame in _frames_of(exception)[2]:
            raw_id = _text(frame.get("raw_id"))
            if not raw_id:
                continue
            digest, _, part = raw_id.partition("/")
            keys[(digest, int(part) if part.isdigit() else 0)] = None
    return list(keys)


def context_lines(context: object) -> list[CodeLine]:
    """A stored context (``{before, line, after}``) as numbered lines in file order.

    cymbal stores ``before`` nearest line first, older versions in file order: sorting by
    number reads right either way.
    """
    if not isinstance(context, Mapping):
        return []

    def numbered(items: Iterable[object], current: bool) -> list[CodeLine]:
        lines = []
        for item in items:
            if isinstance(item, Mapping):
                number, text = _int(item.get("number")), _text(item.get("line"))
                if number is not None and text is not None:
                    lines.append(CodeLine(number, text, current))
        return lines

    before = numbered(_mappings(context.get("before")), False)
    after = numbered(_mappings(context.get("after")), False)
    line = numbered([context.get("line")], True)
    return sorted(before, key=lambda c: c.number) + line + sorted(after, key=lambda c: c.number)


def _raw_context(raw: object) -> list[CodeLine]:
    if not isinstance(raw, Mapping):
        return []
    try:
        return context_lines(raw_frame_context(raw))
    except (WireError, TypeError, ValueError):
        return []


def _variables(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        return [] if value is None else [("(value)", show_value(value))]
    return [(str(name), show_value(item)) for name, item in value.items()]


def chain_label(exception: Mapping[str, Any], index: int) -> str | None:
    """How an exception relates to the one listed above it ("Caused by"…); None for the first."""
    if index == 0:
        return None
    mechanism = exception.get("mechanism")
    source = _text(mechanism.get("source")) if isinstance(mechanism, Mapping) else None
    return _CHAIN_LABELS.get(source or "", "Caused by")


def _grouped_frames(record: object) -> set[str]:
    return {
        raw_id for part in _mappings(record) if (raw_id := _text(part.get("raw_id"))) and part.get("type") == "frame"
    }


# --- the exceptions ---------------------------------------------------------------------------


def _frame_view(
    index: int,
    frame: Mapping[str, Any],
    contexts: Mapping[str, object],
    unresolved: Mapping[str, object],
    grouped: set[str],
) -> FrameView:
    raw_id = _text(frame.get("raw_id")) or ""
    mangled = _text(frame.get("mangled_name"))
    resolved_name = _text(frame.get("resolved_name"))
    name = resolved_name or mangled or "<unknown>"
    raw = unresolved.get(raw_id)
    context = context_lines(contexts.get(raw_id)) or _raw_context(raw)
    return FrameView(
        index=index,
        raw_id=raw_id,
        name=name,
        mangled_name=mangled if mangled and mangled != name else None,
        source=_text(frame.get("source")),
        line=_int(frame.get("line")),
        column=_int(frame.get("column")),
        module=_text(frame.get("module")),
        lang=_text(frame.get("lang")),
        in_app=_bool(frame.get("in_app"), True),
        resolved=_bool(frame.get("resolved"), True),
        failure=_text(frame.get("resolve_failure")),
        synthetic=_bool(frame.get("synthetic"), False),
        suspicious=_bool(frame.get("suspicious"), False),
        grouped=raw_id in grouped,
        variables=_variables(frame.get("code_variables")),
        context=context,
        raw=show_value(raw) if raw is not None else None,
    )


def exception_views(
    exception_list: object,
    *,
    contexts: Mapping[str, object] | None = None,
    unresolved: Mapping[str, object] | None = None,
    record: object = None,
    all_frames: bool = False,
    newest_first: bool = False,
) -> list[ExceptionView]:
    """The event's exceptions in stored order, each with the frames to show.

    ``contexts`` are stored frame contexts by raw id (``"<hash>/<part>"``); ``unresolved`` the
    event's raw frames by raw id; ``record`` its ``$exception_fingerprint_record``, which marks
    the frames the fingerprint was computed from.
    """
    contexts = contexts or {}
    unresolved = unresolved or {}
    grouped = _grouped_frames(record)
    views = []
    for index, exception in enumerate(_mappings(exception_list)):
        has_stack, resolved_stack, frames = _frames_of(exception)
        shown = [_frame_view(i, frame, contexts, unresolved, grouped) for i, frame in enumerate(frames)]
        in_app = sum(frame.in_app for frame in shown)
        if not all_frames and in_app:
            shown = [frame for frame in shown if frame.in_app]
        if newest_first:
            shown.reverse()
        mechanism = exception.get("mechanism")
        mechanism = mechanism if isinstance(mechanism, Mapping) else {}
        handled = mechanism.get("handled")
        views.append(
            ExceptionView(
                index=index,
                id=_text(exception.get("id")),
                type=_text(exception.get("type")) or "Error",
                value=_text(exception.get("value")) or "",
                handled=handled if isinstance(handled, bool) else None,
                mechanism=_text(mechanism.get("type")),
                synthetic=_bool(mechanism.get("synthetic"), False),
                chain=chain_label(exception, index),
                has_stack=has_stack,
                resolved_stack=resolved_stack,
                frames=shown,
                total_frames=len(frames),
                in_app_frames=in_app,
            )
        )
    return views


# --- why an event was grouped -----------------------------------------------------------------


def fingerprint_origin(fingerprint: str, record: object) -> str:
    """Where a fingerprint came from: ``rule``, ``manual`` (the client's), ``computed`` or
    ``unknown`` (no record, e.g. an event stored before records were kept)."""
    kinds = {_text(part.get("type")) for part in _mappings(record)}
    if "custom" in kinds or fingerprint.startswith("custom-rule:"):
        return "rule"
    if "manual" in kinds:
        return "manual"
    if kinds & {"exception", "frame"}:
        return "computed"
    return "unknown"


def _frame_subject(frame: Mapping[str, Any] | None, raw_id: str) -> str:
    if frame is None:
        return f"frame {raw_id[:12]}…"
    name = _text(frame.get("resolved_name")) or _text(frame.get("mangled_name")) or "<unknown>"
    source = _text(frame.get("source"))
    return f"{name} in {source}" if source else name


def record_lines(record: object, exception_list: object) -> list[RecordLine]:
    """A fingerprint record in words: which exception and frame fields were hashed."""
    exceptions = {_text(e.get("id")): e for e in _mappings(exception_list)}
    frames: dict[str, Mapping[str, Any]] = {}
    for exception in exceptions.values():
        for frame in _frames_of(exception)[2]:
            raw_id = _text(frame.get("raw_id"))
            if raw_id:
                frames.setdefault(raw_id, frame)
    lines = []
    for part in _mappings(record):
        kind = _text(part.get("type")) or "unknown"
        pieces = [_PIECE_NAMES.get(str(p), str(p)) for p in part.get("pieces") or [] if isinstance(p, str)]
        if kind == "exception":
            named = exceptions.get(_text(part.get("id")))
            subject = (_text(named.get("type")) or "Error") if named is not None else "an exception"
            lines.append(RecordLine("exception", subject, pieces))
        elif kind == "frame":
            raw_id = _text(part.get("raw_id")) or ""
            lines.append(RecordLine("frame", _frame_subject(frames.get(raw_id), raw_id), pieces))
        elif kind == "custom":
            rule_id = _text(part.get("rule_id"))
            lines.append(RecordLine("custom", "a grouping rule", [], rule_id=rule_id))
        elif kind == "manual":
            lines.append(RecordLine("manual", "the fingerprint the client sent ($exception_fingerprint)", []))
        else:
            lines.append(RecordLine("unknown", kind, pieces))
    return lines


def chain_summary(views: Sequence[ExceptionView]) -> str:
    """``ValueError ← KeyError``: the chain at a glance, outermost first."""
    return " ← ".join(view.type for view in views)
