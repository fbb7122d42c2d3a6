"""Wire schemas of releases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from trapline.api.schemas.common import RequestModel

__all__ = ["ReleaseOut", "ReleaseWrite"]


class ReleaseOut(BaseModel):
    id: uuid.UUID
    hash_id: str
    team_id: int
    created_at: datetime
    metadata: Any
    version: str
    project: str


class ReleaseWrite(RequestModel):
    """Create requires ``version`` and ``project``; an update changes the fields given."""

    version: str | None = Field(default=None, description="The release's version, e.g. 1.4.2 or a git sha.")
    project: str | None = Field(default=None, description="The name of the app this release is of.")
    hash_id: str | None = Field(
        default=None,
        description="Client-chosen unique id, at most 128 characters; the CLI sends sha512(project+version).",
    )
    metadata: Any = Field(default=None, description='Free-form, e.g. {"git": {"commit_id": ...}}.')
