"""What the settings pages' forms share: NUL checks, schema errors in words, lines, pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from trapline.errors import InvalidInput

__all__ = ["PAGE_SIZE", "Offset", "in_words", "lines", "no_nul", "paged"]

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
