"""What the settings pages' forms share: NUL checks, schema errors in words, lines, pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Query
from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from trapline.errors import InvalidInput
from trapline.ui import filter_form
from trapline.ui.filter_form import FilterForm

__all__ = ["PAGE_SIZE", "Offset", "PostedFilters", "PostedFiltersDep", "in_words", "lines", "no_nul", "paged"]

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
