"""Wire shapes shared by every resource."""

from __future__ import annotations

import uuid
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["AssigneeOut", "ErrorBody", "Page", "RequestModel"]

T = TypeVar("T")


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are ignored and numbers are accepted as
    strings, as Django REST framework does."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class ErrorBody(BaseModel):
    """PostHog's error body."""

    type: str
    code: str
    detail: str
    attr: str | None


class Page(BaseModel, Generic[T]):
    """A limit/offset page; ``next`` and ``previous`` are absolute URLs."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class AssigneeOut(BaseModel):
    type: Literal["user", "role"]
    id: int | uuid.UUID
