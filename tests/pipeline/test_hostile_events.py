"""Whatever JSON an SDK (or anyone holding a token) puts in an event, the event is answered,
then stored or counted as dropped: never lost, never a batch that fails on the database.

Hypothesis writes the events: any JSON value in any property (NUL, lone surrogates, integers
beyond 64 bits, deep nesting), including the ones the pipeline reads ($session_id, a client
fingerprint, the level, the URL, the distinct id and timestamp). Each runs on SQLite and
PostgreSQL, whose text cannot hold NUL and whose b-tree entries have a size cap.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.capture import drain, exception
from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.events.models import DroppedEvents, ExceptionEvent

# Text as JSON can carry it: any code point, lone surrogates included (json.dumps escapes them).
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x" * 3000, " " * 80 + "\x00", "-1", "2024-01-01T00:00:00Z"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
READ_BY_THE_PIPELINE = (
    "$session_id",
    "$exception_fingerprint",
    "$exception_level",
    "$current_url",
    "$lib",
    "$lib_version",
    "$release",
    "$environment",
    "$window_id",
    "$exception_issue_id",
    "$exception_types",
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    properties: dict[str, Any] = draw(st.dictionaries(TEXT, JSON_VALUES, max_size=4))
    for key in draw(st.lists(st.sampled_from(READ_BY_THE_PIPELINE), max_size=4, unique=True)):
        properties[key] = draw(JSON_VALUES)
    kind = draw(st.sampled_from(["valid", "texts", "any"]))
    if kind == "valid":
        properties["$exception_list"] = [exception()]
    elif kind == "texts":
        properties["$exception_list"] = [exception(draw(TEXT), draw(TEXT))]
    else:
        properties["$exception_list"] = draw(JSON_VALUES)
    event: dict[str, Any] = {"event": "$exception", "uuid": str(uuid.uuid4()), "properties": properties}
    if draw(st.booleans()):
        event["distinct_id"] = draw(JSON_VALUES)
    if draw(st.booleans()):
        event["timestamp"] = draw(JSON_VALUES)
    return event


def accounted(database: Database) -> int:
    """Events stored plus events counted as dropped."""
    with database.session(write=False) as session:
        stored = session.scalar(select(func.count()).select_from(ExceptionEvent)) or 0
        dropped = session.scalar(select(func.coalesce(func.sum(DroppedEvents.count), 0))) or 0
        return int(stored) + int(dropped)


def assert_kept_or_refused(database: Database, before: int, response: Response) -> None:
    """The event was refused as a whole, in words (a number too big for JSON parsers, say), or
    accepted and then, once processed, stored or counted as dropped: nothing parked."""
    if response.status_code != 200:
        assert response.status_code in (400, 413), response.text
        assert response.json()["detail"]
        return
    result = drain(database)
    assert result.failed_requests == 0
    assert accounted(database) == before + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=events())
def test_any_event_is_stored_or_counted_never_lost(
    client: TestClient, tenant: Tenant, database: Database, event: dict[str, Any]
):
    before = accounted(database)
    body = json.dumps({"api_key": tenant.project_token, "batch": [event]})
    response = client.post("/batch/", content=body, headers={"Content-Type": "application/json"})
    assert_kept_or_refused(database, before, response)
