"""The rule form's filter builder and PostHog's filter JSON, each turned into the other (pure).

A rule's filters are PostHog's ``PropertyGroupFilterValue``. The form shows them as rows of
(property, operator, value, property type) under one AND/OR choice. ``to_filters`` builds the
JSON the REST API takes from the posted rows; ``from_filters`` gives the rows back for editing,
or ``None`` when the JSON says more than rows can (deeper groups, numbers where text is
compared, extra fields): the page then offers the JSON itself, so no rule is changed by being
opened. ``describe`` puts any filters into words for the rule lists.

What PostHog's schema decides (known operators and property types, value shapes) is left to
the API's own schemas, which the pages call with the JSON built here. What is checked here is
what only a form can get wrong: a row with a property and no value, or a value and no property.

Values are typed one per line. Operators that compare with a list (``exact``, ``is_not``, …)
always get a list, as PostHog's rule editor saves them; the others get the text when there is
one line and a list (any of them) when there are several.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMMON_KEYS",
    "LIST_OPERATORS",
    "NO_VALUE_OPERATORS",
    "OPERATOR_CHOICES",
    "PROPERTY_TYPE_CHOICES",
    "Condition",
    "FilterForm",
    "FormProblems",
    "choices_with",
    "describe",
    "describe_parts",
    "form_from_rows",
    "from_filters",
    "humanize_filter_error",
    "to_filters",
]

# What the operator select offers, in the order people reach for them. An operator outside
# this list (set through the API) is still shown for the rule that has it.
OPERATOR_CHOICES: tuple[tuple[str, str], ...] = (
    ("exact", "is exactly"),
    ("is_not", "is not"),
    ("icontains", "contains"),
    ("not_icontains", "does not contain"),
    ("regex", "matches regex"),
    ("not_regex", "does not match regex"),
    ("is_set", "is set"),
    ("is_not_set", "is not set"),
    ("gt", "is greater than"),
    ("gte", "is at least"),
    ("lt", "is less than"),
    ("lte", "is at most"),
    ("is_date_before", "is a date before"),
    ("is_date_after", "is a date after"),
    ("is_date_exact", "is the date"),
    ("semver_gte", "is version ≥"),
    ("semver_lt", "is version <"),
    ("semver_eq", "is version"),
)
_OPERATOR_WORDS: dict[str, str] = {
    **dict(OPERATOR_CHOICES),
    "icontains_multi": "contains",
    "not_icontains_multi": "does not contain",
    "min": "is at least",
    "max": "is at most",
    "between": "is between",
    "not_between": "is not between",
    "in": "is one of",
    "not_in": "is none of",
    "is_cleaned_path_exact": "is the path",
    "flag_evaluates_to": "evaluates to",
    "semver_neq": "is not version",
    "semver_gt": "is version >",
    "semver_lte": "is version ≤",
    "semver_tilde": "is version ~",
    "semver_caret": "is version ^",
    "semver_wildcard": "is version",
}
# A negative operator with several values means "none of them".
_NONE_OF_WORDS = {
    "is_not": "is none of",
    "not_icontains": "contains none of",
    "not_icontains_multi": "contains none of",
    "not_regex": "matches none of",
    "not_in": "is none of",
    "semver_neq": "is none of versions",
}
NO_VALUE_OPERATORS = frozenset({"is_set", "is_not_set"})
LIST_OPERATORS = frozenset(
    {"exact", "is_not", "in", "not_in", "icontains_multi", "not_icontains_multi", "between", "not_between"}
)
_NUMERIC_OPERATORS = frozenset({"gt", "gte", "lt", "lte", "min", "max", "between", "not_between"})

PROPERTY_TYPE_CHOICES: tuple[tuple[str, str], ...] = (
    ("event", "event property"),
    ("error_tracking_issue_property", "exception property"),
    ("person", "person property"),
)
_SUBJECT_PREFIX = {"person": "person ", "error_tracking_issue": "issue "}

# The datalist of the property box: what rules usually test. Free text works too.
COMMON_KEYS: tuple[tuple[str, str], ...] = (
    ("$exception_types", "exception types (every exception in the chain)"),
    ("$exception_values", "exception messages"),
    ("$exception_sources", "source files of the frames"),
    ("$exception_functions", "functions of the frames"),
    ("$exception_handled", "whether the exception was handled"),
    ("$exception_level", "level: error, fatal, …"),
    ("$current_url", "page URL (browsers)"),
    ("$lib", "SDK: web, posthog-python, posthog-node, …"),
    ("$lib_version", "SDK version"),
    ("$app_version", "app version (Sentry release)"),
    ("$environment", "environment (Sentry)"),
    ("$browser", "browser"),
    ("$os", "operating system"),
    ("email", "the user's email"),
)

_AND_OR = ("AND", "OR")


@dataclass(frozen=True)
class Condition:
    """One row of the builder, as typed."""

    key: str = ""
    operator: str = "exact"
    value: str = ""
    type: str = "event"

    @property
    def blank(self) -> bool:
        return not self.key.strip() and not self.value.strip()

    @property
    def values(self) -> list[str]:
        return [line.strip() for line in self.value.splitlines() if line.strip()]


@dataclass(frozen=True)
class FilterForm:
    """The builder: conditions joined by ``match``.

    ``nested`` keeps the shape the rule had: PostHog's rule editor saves the conditions as one
    group inside an AND group (the default here); the API also takes them flat.
    """

    match: str = "AND"
    conditions: tuple[Condition, ...] = ()
    nested: bool = True

    def rows(self, spare: int = 3) -> list[Condition]:
        """The conditions and a few blank rows, which is how the form grows without JavaScript."""
        return [*self.conditions, *(Condition() for _ in range(spare))]


@dataclass
class FormProblems(Exception):
    """Rows that are half filled in, said in words (one sentence each)."""

    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(self.problems)


def form_from_rows(
    match: str,
    keys: Sequence[str],
    operators: Sequence[str],
    values: Sequence[str],
    types: Sequence[str],
    *,
    nested: bool = True,
) -> FilterForm:
    """The builder as posted: parallel lists, one entry per row; blank rows are dropped."""
    count = max(len(keys), len(operators), len(values), len(types), 0)

    def at(items: Sequence[str], index: int, default: str) -> str:
        return items[index] if index < len(items) else default

    rows = (
        Condition(
            key=at(keys, i, "").strip(),
            operator=at(operators, i, "exact").strip() or "exact",
            value=at(values, i, "").replace("\r\n", "\n"),
            type=at(types, i, "event").strip() or "event",
        )
        for i in range(count)
    )
    return FilterForm(match=match, conditions=tuple(row for row in rows if not row.blank), nested=nested)


def to_filters(form: FilterForm) -> dict[str, Any]:
    """The filter JSON for the form, or ``FormProblems`` for rows that are half filled in."""
    problems: list[str] = []
    values: list[dict[str, Any]] = []
    for number, condition in enumerate(form.conditions, start=1):
        if condition.blank:
            continue
        lines = condition.values
        if not condition.key.strip():
            problems.append(f"Condition {number} has a value but no property: say which property it tests.")
            continue
        prop: dict[str, Any] = {"key": condition.key.strip(), "type": condition.type, "operator": condition.operator}
        if condition.operator not in NO_VALUE_OPERATORS:
            if not lines:
                words = _OPERATOR_WORDS.get(condition.operator, condition.operator)
                problems.append(
                    f"Condition {number} ({condition.key.strip()} {words} …) needs a value; "
                    "use “is set” or “is not set” to test whether the property is there."
                )
                continue
            prop["value"] = lines if condition.operator in LIST_OPERATORS or len(lines) > 1 else lines[0]
        values.append(prop)
    if problems:
        raise FormProblems(problems)
    if not values:
        return {"type": form.match, "values": []}
    if form.nested:
        return {"type": "AND", "values": [{"type": form.match, "values": values}]}
    return {"type": form.match, "values": values}


def from_filters(filters: Any) -> FilterForm | None:
    """The builder showing ``filters``, or None when rows cannot say what the JSON says."""
    if not isinstance(filters, Mapping) or set(filters) != {"type", "values"}:
        return None
    match, values = filters.get("type"), filters.get("values")
    if match not in _AND_OR or not isinstance(values, list):
        return None
    nested = False
    if not values:
        return FilterForm(match=str(match), conditions=(), nested=True)
    if len(values) == 1 and isinstance(values[0], Mapping) and _is_group(values[0]):
        inner = values[0]
        if set(inner) != {"type", "values"} or not isinstance(inner["values"], list):
            return None
        match, values, nested = inner["type"], inner["values"], True
    conditions: list[Condition] = []
    for entry in values:
        if isinstance(entry, Mapping) and dict(entry) == {"type": "empty"}:
            continue  # PostHog's no-op filter
        condition = _condition(entry)
        if condition is None:
            return None
        conditions.append(condition)
    if not conditions:
        nested = True
    return FilterForm(match=str(match), conditions=tuple(conditions), nested=nested)


def _is_group(entry: Mapping[str, Any]) -> bool:
    return entry.get("type") in _AND_OR and "values" in entry


def _condition(entry: Any) -> Condition | None:
    if not isinstance(entry, Mapping) or not set(entry) <= {"key", "type", "operator", "value"}:
        return None
    key, kind, operator = entry.get("key"), entry.get("type", "event"), entry.get("operator")
    if not isinstance(key, str) or not key.strip() or key != key.strip() or not isinstance(kind, str):
        return None
    if operator is None and kind == "event":
        operator = "exact"  # what an event filter without one means
    if not isinstance(operator, str) or not operator:
        return None
    if operator in NO_VALUE_OPERATORS:
        return Condition(key=key, operator=operator, value="", type=kind)  # any value is ignored
    if "value" not in entry:
        return None
    lines = _value_lines(entry["value"], numeric=operator in _NUMERIC_OPERATORS)
    if lines is None:
        return None
    return Condition(key=key, operator=operator, value="\n".join(lines), type=kind)


def _value_lines(value: Any, *, numeric: bool) -> list[str] | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    lines: list[str] = []
    for item in items:
        if isinstance(item, str):
            # Rows hold trimmed, non-empty single lines; anything else is for the JSON editor.
            if not item.strip() or item != item.strip() or "\n" in item or "\r" in item:
                return None
            lines.append(item)
        elif numeric and isinstance(item, int | float) and not isinstance(item, bool):
            # Numeric operators read "5" and 5 alike, so a number can be shown as text.
            lines.append(repr(item))
        else:
            return None
    return lines


# --- in words --------------------------------------------------------------------------------

_PATH = re.compile(r"filters(?P<inner>\.values\[0\])?\.values\[(?P<index>\d+)\]")


def humanize_filter_error(message: str, form: FilterForm | None) -> str:
    """The API's filter error with its JSON path (``filters.values[0].values[1]``) as a row number."""
    if form is None:
        return message

    def replace(found: re.Match[str]) -> str:
        if form.nested and not found["inner"]:
            return found[0]
        return f"condition {int(found['index']) + 1}"

    return _PATH.sub(replace, message)


def describe(filters: Any) -> str:
    """Filters in words: ``$exception_types is exactly TypeError AND $current_url contains /admin``."""
    return "".join(text for _, text in describe_parts(filters))


def describe_parts(filters: Any) -> list[tuple[str, str]]:
    """``describe`` as (kind, text) pieces, kind one of key, op, value, join, plain: for styling."""
    parts = _group_parts(filters, depth=0)
    return parts if parts else [("plain", "every event")]


def _group_parts(group: Any, *, depth: int) -> list[tuple[str, str]]:
    if not isinstance(group, Mapping) or depth > 20:
        return [("plain", "filters that cannot be read")]
    values = group.get("values")
    if not isinstance(values, list):
        return [("plain", "filters that cannot be read")]
    joiner = group.get("type") if group.get("type") in _AND_OR else "AND"
    children: list[tuple[list[tuple[str, str]], bool]] = []  # (parts, several conditions)
    for entry in values:
        if isinstance(entry, Mapping) and _is_group(entry):
            child = _group_parts(entry, depth=depth + 1)
            several = any(kind == "join" for kind, _ in child)
        else:
            child, several = _property_parts(entry), False
        if child:
            children.append((child, several))
    out: list[tuple[str, str]] = []
    for index, (child, several) in enumerate(children):
        if index:
            out.append(("join", f" {joiner} "))
        # A group needs brackets only beside something else: "a AND (b OR c)".
        out.extend([("plain", "("), *child, ("plain", ")")] if several and len(children) > 1 else child)
    return out


def _property_parts(entry: Any) -> list[tuple[str, str]]:
    if not isinstance(entry, Mapping):
        return [("plain", "a filter that cannot be read")]
    kind = entry.get("type", "event" if "key" in entry else "empty")
    if kind == "empty":
        return []
    key = str(entry.get("key", "?"))
    subject = _SUBJECT_PREFIX.get(str(kind), "" if kind in ("event", "error_tracking_issue_property") else f"{kind} ")
    operator = str(entry.get("operator") or "exact")
    out: list[tuple[str, str]] = [("key", subject + key)]
    if operator in NO_VALUE_OPERATORS:
        return [*out, ("op", f" {_OPERATOR_WORDS[operator]}")]
    value = entry.get("value")
    items = value if isinstance(value, list) else [value]
    texts = [_value_text(item) for item in items]
    if not texts:
        return [*out, ("op", f" {_OPERATOR_WORDS.get(operator, operator)}"), ("plain", " nothing")]
    if len(texts) > 1 and operator in _NONE_OF_WORDS:
        words, glue = _NONE_OF_WORDS[operator], ", "
    elif operator in ("between", "not_between") and len(texts) == 2:
        words, glue = _OPERATOR_WORDS[operator], " and "
    else:
        words, glue = _OPERATOR_WORDS.get(operator, operator), " or "
    out.append(("op", f" {words} "))
    for index, text in enumerate(texts):
        if index:
            out.append(("plain", glue))
        out.append(("value", text))
    return out


def _value_text(item: Any) -> str:
    if item is None:
        return "nothing"
    if isinstance(item, bool):
        return "true" if item else "false"
    text = str(item)
    return text if text.strip() else repr(text)


def choices_with(choices: Iterable[tuple[str, str]], current: Iterable[str]) -> list[tuple[str, str]]:
    """``choices`` plus any value in ``current`` they lack (a rule's operator set through the API)."""
    listed = list(choices)
    known = {value for value, _ in listed}
    for value in current:
        if value not in known:
            listed.append((value, _OPERATOR_WORDS.get(value, value)))
            known.add(value)
    return listed
