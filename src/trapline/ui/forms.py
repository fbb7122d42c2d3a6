"""What the settings pages' forms share: NUL checks, schema errors in words, lines, pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Form, Query
from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from trapline.errors import InvalidInput
from trapline.ui import filter_form
from trapline.ui.filter_form import FilterForm, FormProblems

__all__ = [
    "PAGE_SIZE",
    "Offset",
    "PostedFilters",
    "PostedFiltersDep",
    "builder_context",
    "filters_posted",
    "in_words",
    "lines",
    "no_nul",
    "paged",
    "pretty_json",
]

PAGE_SIZE = 50
_FIELD_WORDS = {
    "match_type": "Match",
    "sample_rate": "Sample rate",
    "linked_feature_flag": "Linked feature flag",
    "event_triggers": "Event triggers",
    "url_triggers": "URL triggers",
    "url_blocklist": "URL blocklist",
    "autocapture_exceptions_opt_in": "Exception autocapture",
    "version": "Version",
    "project": "App name",
    "hash_id": "Hash id",
}


def no_nul(*texts: str) -> None:
    # PostgreSQL text cannot hold NUL; the API refuses it in every body, and so do forms.
    if any("\x00" in text for text in texts):
        raise InvalidInput("Text cannot contain NUL characters.")


@dataclass(frozen=True)
class PostedFilters:
    """The condition builder's fields as posted (rules and alerts pages): its rows, or the JSON."""

    form: FilterForm
    json_mode: bool
    filters_json: str


def _posted_filters(
    match: Annotated[str, Form()] = "AND",
    shape: Annotated[str, Form()] = "nested",
    key: Annotated[list[str] | None, Form()] = None,
    operator: Annotated[list[str] | None, Form()] = None,
    value: Annotated[list[str] | None, Form()] = None,
    property_type: Annotated[list[str] | None, Form()] = None,
    mode: Annotated[str, Form()] = "builder",
    filters_json: Annotated[str, Form()] = "",
) -> PostedFilters:
    rows = (key or [], operator or [], value or [], property_type or [])
    no_nul(match, filters_json, *(text for row in rows for text in row))
    return PostedFilters(filter_form.form_from_rows(match, *rows, nested=shape != "flat"), mode == "json", filters_json)


PostedFiltersDep = Annotated[PostedFilters, Depends(_posted_filters)]


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def filters_posted(form: FilterForm, json_mode: bool, filters_json: str, problems: list[str]) -> Any:
    """The filter JSON a condition-builder form stands for: its rows, or the JSON typed instead.
    What is wrong with either is added to ``problems`` (and None returned)."""
    if json_mode:
        try:
            return orjson.loads(filters_json or "null")
        except orjson.JSONDecodeError as exc:
            problems.append(f"The filters are not valid JSON: {exc}.")
            return None
    try:
        return filter_form.to_filters(form)
    except FormProblems as exc:
        problems.extend(exc.problems)
        return None


def builder_context(form: FilterForm, *, issue_types: bool) -> dict[str, Any]:
    """What the condition builder's template needs besides the posted fields: its rows and the
    choices (with any operator or property type set through the API that the lists lack)."""
    types = [*filter_form.PROPERTY_TYPE_CHOICES, *((("error_tracking_issue", "issue"),) if issue_types else ())]
    return {
        "rows": form.rows(),
        "operator_choices": filter_form.choices_with(
            filter_form.OPERATOR_CHOICES, [c.operator for c in form.conditions]
        ),
        "type_choices": filter_form.choices_with(types, [c.type for c in form.conditions]),
        "common_keys": filter_form.COMMON_KEYS,
        "no_value_operators": sorted(filter_form.NO_VALUE_OPERATORS),
    }


def in_words(exc: ValidationError) -> list[str]:
    found = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error.get("loc") else ""
        found.append(f"{_FIELD_WORDS.get(where, where or 'The form')}: {error.get('msg', 'is not valid')}")
    return found


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def paged(session: Session, stmt: Select[Any], offset: int) -> tuple[int, list[Any]]:
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return count, list(session.scalars(stmt.limit(PAGE_SIZE).offset(offset)))


Offset = Annotated[int, Query(ge=0, le=2**53)]
