"""Whatever a Sentry event holds, ``/store/`` answers it, and it is then stored or counted as
dropped: never lost, never a batch that fails on the database (SQLite and PostgreSQL).

The fields the mapping reads get any JSON value, or their usual shape with any values inside.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import Tenant
from tests.pipeline.test_hostile_events import JSON_VALUES, accounted, assert_kept_or_refused
from tests.sentry.test_endpoint import auth, sentry_key
from trapline.db.engine import Database

FIELDS = (
    "platform", "message", "logentry", "logger", "level", "release", "dist", "environment", "user", "tags",
    "request", "fingerprint", "contexts", "extra", "timestamp", "server_name", "transaction", "sdk", "modules",
)  # fmt: skip
FRAME_FIELDS = (
    "filename", "abs_path", "function", "module", "lineno", "colno", "in_app", "context_line", "pre_context",
    "post_context", "vars", "platform", "debug_id", "instruction_addr", "package",
)  # fmt: skip


def shaped(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(fields), JSON_VALUES, max_size=len(fields))


EXCEPTION = st.fixed_dictionaries(
    {},
    optional={
        "type": JSON_VALUES,
        "value": JSON_VALUES,
        "module": JSON_VALUES,
        "mechanism": JSON_VALUES,
        "stacktrace": st.fixed_dictionaries({"frames": st.lists(shaped(FRAME_FIELDS), max_size=4)}) | JSON_VALUES,
    },
)


@st.composite
def sentry_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": uuid.uuid4().hex, **draw(shaped(FIELDS))}
    if draw(st.booleans()):
        values = draw(st.lists(EXCEPTION, max_size=3))
        event["exception"] = draw(st.sampled_from([{"values": values}, values])) if values else draw(JSON_VALUES)
    if draw(st.booleans()):
        event["platform"] = draw(st.sampled_from(["python", "javascript", "node", "java", "cocoa", "other"]))
    if draw(st.booleans()):
        event["sdk"] = {"name": draw(st.sampled_from(["sentry.python", "sentry.javascript.node", "x"])), "version": "1"}
    return event


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=sentry_events())
def test_any_sentry_event_is_stored_or_counted_never_lost(
    client: TestClient, tenant: Tenant, database: Database, event: dict[str, Any]
):
    before = accounted(database)
    headers = {"Content-Type": "application/json", **auth(sentry_key(database, tenant))}
    response = client.post(f"/api/{tenant.project_id}/store/", content=json.dumps(event), headers=headers)
    assert_kept_or_refused(database, before, response)
