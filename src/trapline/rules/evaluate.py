"""Evaluate PostHog property-group filters against one event, in plain Python.

PostHog compiles a rule's ``filters`` to HogQL (``property_to_expr``) and runs the bytecode in
cymbal; this module gives the same answers without either. ``compile_filters`` does the work
that depends only on the rule (regexes, numbers, dates, semver bounds) once and returns a
predicate, which the pipeline then calls for every event::

    suppress = compile_filters(rule.filters)
    if suppress(Subject(properties=event.properties)): ...

The shared rules, for every operator:

* A missing property and a ``null`` one are the same (HogQL cannot tell them apart).
* A list-valued property (``$exception_types`` and the like) matches a positive operator when
  any element does, as posthog-js compares them.
* A list ``value`` matches a positive operator when any value does, so an empty list matches
  nothing (PostHog compiles it to ``true``, which would let a half-made grouping rule swallow
  every event).
* Each negative operator (``is_not``, ``not_regex``, ...) is the exact complement of its
  positive one: it matches a missing property, and an array only when no element matches.
"""

from __future__ import annotations

import calendar
import json
import operator as op
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from trapline.rules.filters import FilterError, validate_filters

__all__ = ["EvaluationError", "Predicate", "Subject", "compile_filters", "matches"]


class EvaluationError(Exception):
    """The filter cannot be evaluated for this input (e.g. an invalid regex, an unsupported
    filter type such as hogql or cohort). The caller disables the rule with this message."""


@dataclass(frozen=True)
class Subject:
    """What one rule is evaluated against: an event, and for assignment rules its issue."""

    properties: Mapping[str, Any]
    """The event's properties, read by ``event`` filters."""
    issue: Mapping[str, Any] | None = None
    """``{"status", "name", "description", ...}``, read by ``error_tracking_issue`` filters."""
    person_properties: Mapping[str, Any] | None = None
    """Read by ``person`` filters; ``None`` leaves every person property unset."""


Predicate = Callable[[Subject], bool]
Clock = Callable[[], datetime]
_Test = Callable[[Any], bool]  # one present, non-null value (or one element of an array)
_Read = Callable[[Subject], Any]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def matches(filters: Mapping[str, Any], subject: Subject, *, now: datetime | None = None) -> bool:
    """Whether ``subject`` matches ``filters``; ``now`` anchors relative dates such as ``-7d``."""
    return compile_filters(filters, clock=_utcnow if now is None else (lambda: now))(subject)


def compile_filters(filters: Mapping[str, Any], *, clock: Clock = _utcnow) -> Predicate:
    """Turn ``filters`` into a predicate over subjects, or raise ``EvaluationError``.

    Everything that can be wrong with a rule is found here, not per event: malformed filters,
    unsupported types and operators, bad regexes, values an operator cannot use. The returned
    predicate itself never raises. ``clock`` is read per event, for relative dates only.
    """
    try:
        validate_filters(filters)
    except FilterError as exc:
        raise EvaluationError(str(exc)) from None
    return _compile_group(filters, "filters", clock) or _always


def _always(subject: Subject) -> bool:
    return True


# --- groups ---------------------------------------------------------------------------------


def _compile_group(group: Mapping[str, Any], where: str, clock: Clock) -> Predicate | None:
    """The group's predicate, or ``None`` when it holds no real filter.

    PostHog turns ``{"type": "empty"}``, ``{}`` and an empty group into ``true``, which makes
    an OR that holds one match everything. They are dropped here instead, so an unfinished
    entry in the UI never widens a rule; a group with nothing left still matches everything.
    """
    children: list[Predicate] = []
    for index, node in enumerate(group["values"]):
        here = f"{where}.values[{index}]"
        if "values" in node and node.get("type") in ("AND", "OR"):
            child = _compile_group(node, here, clock)
        else:
            child = _compile_property(node, here, clock)
        if child is not None:
            children.append(child)
    if not children:
        return None
    if len(children) == 1:
        return children[0]
    return _all_of(tuple(children)) if group["type"] == "AND" else _any_of(tuple(children))


def _all_of(children: tuple[Predicate, ...]) -> Predicate:
    def all_of(subject: Subject) -> bool:
        return all(child(subject) for child in children)

    return all_of


def _any_of(children: tuple[Predicate, ...]) -> Predicate:
    def any_of(subject: Subject) -> bool:
        return any(child(subject) for child in children)

    return any_of


# --- property filters -----------------------------------------------------------------------

# negative operator -> the positive one it complements
_NEGATIONS = {
    "is_not": "exact",
    "not_in": "in",
    "not_icontains": "icontains",
    "not_icontains_multi": "icontains_multi",
    "not_regex": "regex",
    "not_between": "between",
    "semver_neq": "semver_eq",
}


def _compile_property(prop: Mapping[str, Any], where: str, clock: Clock) -> Predicate | None:
    kind = prop.get("type", "event" if "key" in prop else "empty")
    if kind == "empty":
        return None
    read = _reader(kind, str(prop["key"]), where)
    operator = prop.get("operator") or "exact"
    if operator == "flag_evaluates_to":  # only means something for feature flag dependencies
        raise EvaluationError(f"{where}: operator {operator} is not supported here")
    value = prop.get("value")

    if operator == "is_set" or (value is None and operator in ("is_not", "not_in")):
        # HogQL prints ``x = NULL`` as isNull(x) and ``x != NULL`` as isNotNull(x): exact and
        # is_not without a value ask whether the property is unset, or set.
        return lambda subject: read(subject) is not None
    if operator == "is_not_set" or (value is None and operator in ("exact", "in")):
        return lambda subject: read(subject) is None
    if value is None:
        raise EvaluationError(f"{where}: operator {operator} needs a value")
    positive = _NEGATIONS.get(operator, operator)
    test = _compile_test(positive, value, where, clock)
    return _property_predicate(read, test, negated=positive != operator)


def _reader(kind: str, key: str, where: str) -> _Read:
    # error_tracking_issue_property names the exception properties of the event
    # ($exception_types, $exception_values, ...): PostHog's rule editor writes suppression rules
    # with it and posthog-js evaluates those against the event, so the server must too.
    if kind in ("event", "error_tracking_issue_property"):
        return lambda subject: subject.properties.get(key)
    if kind == "person":
        return lambda subject: None if subject.person_properties is None else subject.person_properties.get(key)
    if kind == "error_tracking_issue":
        return lambda subject: None if subject.issue is None else subject.issue.get(key)
    # hogql needs a HogQL engine, cohort/group/session/... need data an event does not carry,
    # and event_metadata names top-level event columns (timestamp, distinct_id), not properties.
    raise EvaluationError(f"{where}: Unsupported filter type {kind}")


def _property_predicate(read: _Read, test: _Test, *, negated: bool) -> Predicate:
    def predicate(subject: Subject) -> bool:
        value = read(subject)
        if value is None:
            return negated
        if isinstance(value, list | tuple):
            return any(test(item) for item in value if item is not None) != negated
        return test(value) != negated

    return predicate


def _compile_test(operator: str, value: Any, where: str, clock: Clock) -> _Test:
    """The test of one present value for a positive ``operator``."""
    values: list[Any] = value if isinstance(value, list) else [value]
    if operator in ("exact", "in"):
        return _exact_test(values)
    if operator in ("icontains", "icontains_multi"):
        return _icontains_test(values)
    if operator == "regex":
        return _regex_test(values, where)
    if operator in _NUMERIC:
        return _numeric_test(_NUMERIC[operator], [_filter_number(v, operator, where) for v in values])
    if operator == "between":
        return _between_test(value, where)
    if operator in _DATE_OPERATORS:
        return _date_test(operator, [_date_target(v, operator, where) for v in values], clock)
    if operator in _SEMVER_COMPARE:
        return _semver_test(_SEMVER_COMPARE[operator], [_filter_semver(v, operator, where) for v in values])
    if operator in _SEMVER_RANGES:
        return _semver_range_test([_semver_range(v, operator, where) for v in values])
    if operator == "is_cleaned_path_exact":
        return _cleaned_path_test(values)
    raise EvaluationError(f"{where}: operator {operator} is not supported here")


# --- strings --------------------------------------------------------------------------------


def _to_string(value: Any) -> str:
    """``toString(x)`` of a JSON value: what string operators see."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    # Objects and nested arrays compare as the compact JSON that JS clients send and ClickHouse
    # keeps, so `{"a":1}` is what a user would write.
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # not JSON at all (a circular or oddly keyed mapping)
        return str(value)


def _exact_test(values: Sequence[Any]) -> _Test:
    strings = frozenset(_to_string(v) for v in values)
    # A number in the filter matches a numeric string ("5" and "5.0" both match 5), and a
    # number property matches any value that reads as that number. Two strings compare as
    # strings: "007" is not "7".
    numbers = frozenset(n for v in values if (n := _number(v)) is not None)
    filter_numbers = frozenset(v for v in values if _is_number(v))

    def exact(x: Any) -> bool:
        if isinstance(x, str):
            return x in strings or (bool(filter_numbers) and _number(x) in filter_numbers)
        if _is_number(x):
            return x in numbers
        return _to_string(x) in strings

    return exact


def _icontains_test(values: Sequence[Any]) -> _Test:
    # A plain substring test, as posthog-js does: "%" and "_" in the value are not the
    # wildcards they would be in HogQL's ILIKE. casefold, not lower, so "STRASSE" finds "straße".
    needles = tuple(_to_string(v).casefold() for v in values)

    def icontains(x: Any) -> bool:
        haystack = _to_string(x).casefold()
        return any(needle in haystack for needle in needles)

    return icontains


def _regex_test(values: Sequence[Any], where: str) -> _Test:
    patterns = tuple(_compile_regex(_to_string(v), where) for v in values)

    def regex(x: Any) -> bool:
        text = _to_string(x)
        return any(pattern.search(text) for pattern in patterns)

    return regex


# re2 reads "[[:digit:]]" as the digits; re reads it as a set of "[:digt" followed by "]".
_POSIX_CLASS = re.compile(
    r"\[[^\]]*\[:(?:alnum|alpha|ascii|blank|cntrl|digit|graph|lower|print|punct|space|upper|word|xdigit):\]"
)


def _compile_regex(pattern: str, where: str) -> re.Pattern[str]:
    # PostHog matches with re2, and re agrees with it on the common syntax. Where the two would
    # read a pattern differently, the rule is refused rather than left to match something else;
    # where re lacks a feature (\p{L}), compiling fails anyway.
    if _POSIX_CLASS.search(pattern):
        raise EvaluationError(f"{where}: invalid regex {pattern!r}: POSIX classes such as [:digit:] are not supported")
    # re warns (FutureWarning) about "[[" and "&&" in sets, which it may read differently one
    # day; that is not this rule's problem. catch_warnings is process-wide: while this runs,
    # another thread's FutureWarning could go unshown, which is harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return re.compile(pattern)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise EvaluationError(f"{where}: invalid regex {pattern!r}: {exc}") from None


_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def _clean_path(url: str) -> str:
    """The path of a URL or path, without query, fragment or trailing slash."""
    path = url.split("#", 1)[0].split("?", 1)[0]
    origin = _ORIGIN.match(path)
    if origin:
        path = path[origin.end() :]
    return path.rstrip("/") or "/"


def _cleaned_path_test(values: Sequence[Any]) -> _Test:
    # PostHog also applies the team's path-cleaning regexes here; there are none to apply.
    paths = frozenset(_clean_path(_to_string(v)) for v in values)
    return lambda x: _clean_path(_to_string(x)) in paths


# --- numbers --------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMERIC: dict[str, Callable[[Any, Any], bool]] = {
    "gt": op.gt,
    "gte": op.ge,
    "min": op.ge,
    "lt": op.lt,
    "lte": op.le,
    "max": op.le,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> int | float | None:
    """The number a JSON number or numeric string stands for; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        return None
    if any(c in value for c in ".eE"):
        return float(value)
    try:
        return int(value)
    except ValueError:  # more digits than int() parses from text; float() gives inf
        return float(value)


def _filter_number(value: Any, operator: str, where: str) -> int | float:
    number = _number(value)
    if number is None:
        raise EvaluationError(f"{where}: operator {operator} needs a number, got {value!r}")
    return number


def _numeric_test(compare: Callable[[Any, Any], bool], bounds: Sequence[int | float]) -> _Test:
    # HogQL casts the property to a float: anything that isn't a number never matches.
    def numeric(x: Any) -> bool:
        number = _number(x)
        return number is not None and any(compare(number, bound) for bound in bounds)

    return numeric


def _between_test(value: Any, where: str) -> _Test:
    if not isinstance(value, list) or len(value) != 2:
        raise EvaluationError(f"{where}: operator between needs two numbers [low, high], got {value!r}")
    low, high = (_filter_number(v, "between", where) for v in value)
    if low > high:
        raise EvaluationError(f"{where}: operator between needs low <= high, got {value!r}")

    def between(x: Any) -> bool:
        number = _number(x)
        return number is not None and low <= number <= high

    return between


# --- dates ----------------------------------------------------------------------------------

_DATE_OPERATORS = frozenset({"is_date_exact", "is_date_before", "is_date_after"})
# PostHog's relative dates: a count and a unit, always counted back from now. "m" is months,
# "M" minutes, and a quarter is 13 weeks.
_RELATIVE = re.compile(r"-?([0-9]{1,9})([hdwmMsqy])")
_RELATIVE_UNITS = {"h": "hours", "d": "days", "w": "weeks", "M": "minutes", "s": "seconds"}
_DAY_ONLY = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{8}")
_LOOSE_DAY = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")  # 2021-1-1, which isoformat refuses
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _DateTarget:
    fixed: datetime | None = None
    months: int = 0  # relative, counted in calendar months ...
    delta: timedelta | None = None  # ... or as a fixed duration
    day_only: bool = False

    def resolve(self, clock: Clock) -> datetime:
        if self.fixed is not None:
            return self.fixed
        now = clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        if self.delta is not None:
            try:
                return now - self.delta
            except OverflowError:  # before year 1
                return _EARLIEST
        return _months_before(now, self.months)


def _months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    if index < 12:  # before year 1
        return _EARLIEST
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _date_target(value: Any, operator: str, where: str) -> _DateTarget:
    if isinstance(value, str):
        relative = _RELATIVE.fullmatch(value)
        if relative:
            count, unit = int(relative[1]), relative[2]
            if unit in ("m", "y"):
                return _DateTarget(months=count * (12 if unit == "y" else 1))
            try:
                delta = timedelta(weeks=13 * count) if unit == "q" else timedelta(**{_RELATIVE_UNITS[unit]: count})
            except OverflowError:
                raise EvaluationError(f"{where}: relative date {value!r} is out of range") from None
            return _DateTarget(delta=delta)
        fixed = _parse_datetime(value)
        if fixed is not None:
            return _DateTarget(fixed=fixed, day_only=_DAY_ONLY.fullmatch(value) is not None)
    raise EvaluationError(f"{where}: operator {operator} needs an ISO 8601 date or a relative date such as -7d")


def _parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date or datetime, in UTC; naive ones are taken to be UTC already."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        loose = _LOOSE_DAY.fullmatch(text)
        if not loose:
            return None
        try:
            moment = datetime(int(loose[1]), int(loose[2]), int(loose[3]))
        except ValueError:
            return None
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime | None:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # an offset that pushes it past year 1 or 9999
        return None


def _property_datetime(value: Any) -> datetime | None:
    if isinstance(value, str):
        return _parse_datetime(value)
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None  # numbers are not read as Unix timestamps: seconds or milliseconds is a guess


def _date_test(operator: str, targets: Sequence[_DateTarget], clock: Clock) -> _Test:
    def date_test(x: Any) -> bool:
        moment = _property_datetime(x)
        if moment is None:
            return False
        for target in targets:
            other = target.resolve(clock)
            if operator == "is_date_before":
                hit = moment < other
            elif operator == "is_date_after":
                hit = moment > other
            elif target.day_only:
                # PostHog compares with midnight, which no real timestamp hits; a date
                # means the whole (UTC) day.
                hit = moment.date() == other.date()
            else:
                hit = moment.replace(microsecond=0) == other.replace(microsecond=0)
            if hit:
                return True
        return False

    return date_test


# --- semver ---------------------------------------------------------------------------------

# ``sortableSemver``: dotted integers, an optional "v", and a pre-release or build suffix that
# does not take part in the order (1.2.3-beta == 1.2.3), as in PostHog.
_SEMVER = re.compile(r"[vV]?([0-9]+(?:\.[0-9]+)*)(?:[-+].*)?", re.DOTALL)
_SEMVER_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "semver_eq": op.eq,
    "semver_gt": op.gt,
    "semver_gte": op.ge,
    "semver_lt": op.lt,
    "semver_lte": op.le,
}
_SEMVER_RANGES = frozenset({"semver_tilde", "semver_caret", "semver_wildcard"})
_Version = tuple[int, ...]


def _semver_parts(text: str) -> _Version | None:
    match = _SEMVER.fullmatch(text.strip())
    if not match:
        return None
    try:
        return tuple(int(part) for part in match[1].split("."))
    except ValueError:  # a part longer than int() parses from text
        return None


def _normal(parts: _Version) -> _Version:
    """Missing parts are zeros: 1.2 == 1.2.0, so trailing zeros go before tuples compare."""
    end = len(parts)
    while end > 1 and parts[end - 1] == 0:
        end -= 1
    return parts[:end]


def _property_semver(value: Any) -> _Version | None:
    if not isinstance(value, str) and not _is_number(value):
        return None
    parts = _semver_parts(_to_string(value))
    return None if parts is None else _normal(parts)


def _filter_semver_parts(value: Any, operator: str, where: str) -> _Version:
    parts = _semver_parts(_to_string(value)) if isinstance(value, str) or _is_number(value) else None
    if parts is None:
        raise EvaluationError(f"{where}: operator {operator} needs a version such as 1.2.3, got {value!r}")
    return parts


def _filter_semver(value: Any, operator: str, where: str) -> _Version:
    return _normal(_filter_semver_parts(value, operator, where))


def _semver_range(value: Any, operator: str, where: str) -> tuple[_Version, _Version]:
    """[lower, upper) of ~1.2.3, ^1.2.3 or 1.2.*, with PostHog's bounds."""
    if operator == "semver_wildcard" and isinstance(value, str):
        value = value.rstrip(".*")  # PostHog strips every trailing "." and "*"
    parts = _filter_semver_parts(value, operator, where)
    major, minor, patch = (*parts[:3], 0, 0)[:3]
    lower: _Version
    upper: _Version
    if operator == "semver_tilde":
        lower, upper = (major, minor, patch), ((major + 1,) if len(parts) == 1 else (major, minor + 1))
    elif operator == "semver_caret":
        lower = (major, minor, patch)
        upper = (major + 1,) if major else (0, minor + 1) if minor else (0, 0, patch + 1)
    else:
        lower = parts[:3]
        upper = (*lower[:-1], lower[-1] + 1)
    return _normal(lower), _normal(upper)


def _semver_test(compare: Callable[[Any, Any], bool], versions: Sequence[_Version]) -> _Test:
    def semver(x: Any) -> bool:
        version = _property_semver(x)
        return version is not None and any(compare(version, v) for v in versions)

    return semver


def _semver_range_test(ranges: Sequence[tuple[_Version, _Version]]) -> _Test:
    def semver_range(x: Any) -> bool:
        version = _property_semver(x)
        return version is not None and any(lower <= version < upper for lower, upper in ranges)

    return semver_range
