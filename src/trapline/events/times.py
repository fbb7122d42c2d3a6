"""When an event happened, by the server's clock, from what the client says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from trapline.db.types import utcnow

__all__ = ["event_time", "parse_timestamp"]

# PostHog refuses to believe clients more than this far in the future: such a timestamp is
# a wrong device clock, and would pin an issue's "last seen" to a future date.
_MAX_FUTURE = timedelta(hours=23)


def event_time(event: dict[str, Any], received_at: datetime, sent_at: datetime | None) -> datetime:
    """PostHog's rule: trust the client's clock only relative to its own sent_at.

    ``timestamp - sent_at`` is how long ago, by the client's clock, the event happened;
    applied to our receive time it survives a device clock that is hours off.
    """
    timestamp = parse_timestamp(event.get("timestamp"))
    offset = event.get("offset")
    if timestamp is not None and sent_at is not None:
        result = received_at + (timestamp - sent_at)
    elif isinstance(offset, int | float) and not isinstance(offset, bool):
        result = received_at - timedelta(milliseconds=offset)
    elif timestamp is not None:
        result = timestamp
    else:
        result = received_at
    if result > utcnow() + _MAX_FUTURE:
        return received_at
    return result


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime, or None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
