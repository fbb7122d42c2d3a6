"""Wire schema of issue fingerprints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

__all__ = ["FingerprintOut"]


class FingerprintOut(BaseModel):
    id: uuid.UUID
    fingerprint: str
    issue_id: uuid.UUID
    created_at: datetime
    first_seen: datetime | None
