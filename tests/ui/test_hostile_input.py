"""Every UI route, fed hostile paths, queries and forms, answers in words: never a 500."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.issue_data import make_event, make_issue
from tests.ui.conftest import csrf_of
from trapline.alerts.models import Alert
from trapline.db.engine import Database
from trapline.ids import uuid7
from trapline.ui import PAGES

ROUTES = [
    (method, route.path)
    for module in PAGES
    for route in module.router.routes
    if isinstance(route, APIRoute)
    for method in sorted(route.methods)
]
HOSTILE = ["\x00", "'; DROP TABLE issue; --", "%", "_", "\\", "∞" * 300, "-1", "99999999999999999999", "[]", "{}"]
BAD_IDS = ("0", "-5", "99999999999999999999", "not-a-uuid", "%00")
QUERY_KEYS = (
    "q", "status", "assignee", "date_from", "date_to", "order_by", "order_direction", "offset", "limit", "event",
    "frames", "order", "search", "next", "project_id",
)  # fmt: skip
FORM_KEYS = (
    "email", "password", "label", "scopes", "action", "ids", "primary", "assign_to", "status", "assignee",
    "fingerprint", "key", "operator", "value", "match", "filters_json", "mode", "sampling_rate", "name", "level",
    "version", "project", "hash_id", "url_blocklist", "sample_rate", "current_password", "new_password",
    "trigger", "threshold", "window_minutes", "interval_minutes", "destination_type", "url", "secret", "headers", "to",
    "throttle_max", "throttle_minutes", "enabled", "back", "multiplier", "snooze_minutes",
)  # fmt: skip
PARAM = re.compile(r"{(\w+)}")


@pytest.fixture
def issue_id(database: Database, tenant: Tenant) -> str:
    with database.session(write=True) as session:
        issue = make_issue(session, tenant.project_id, ["fp-hostile"])
        make_event(session, tenant.project_id, "fp-hostile")
        return str(issue.id)


@pytest.fixture
def alert_id(database: Database, tenant: Tenant) -> str:
    # A .invalid host never resolves (RFC 6761): "Send test" fails at once, without a network.
    with database.session(write=True) as session:
        alert = Alert(
            id=uuid7(), project_id=tenant.project_id, name="hostile", trigger="issue_created",
            filters={"type": "AND", "values": []}, destination_type="webhook",
            destination={"url": "https://hooks.invalid/x", "secret": "s"},
        )  # fmt: skip
        session.add(alert)
        session.commit()
        return str(alert.id)


def urls(path: str, tenant: Tenant, issue_id: str, alert_id: str) -> list[tuple[str, list[str]]]:
    """The path with real ids where there are some, with every hostile value; then with each
    id made bad in turn, with a few (a bad id is refused before the form is read, or the real
    path already fed the form everything)."""
    names = PARAM.findall(path)
    real = dict.fromkeys(names, "1") | {
        "project_id": str(tenant.project_id),
        "issue_id": issue_id,
        "alert_id": alert_id,
    }

    def fill(values: dict[str, str]) -> str:
        return PARAM.sub(lambda found: values[found.group(1)], path)

    bad_ids = [fill({**real, name: bad}) for name in names for bad in BAD_IDS]
    return [(fill(real), HOSTILE)] + [(url, HOSTILE[:2]) for url in bad_ids]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_route_answers_a_500(ui: TestClient, tenant: Tenant, issue_id: str, alert_id: str, method: str, path: str):
    csrf = csrf_of(ui.get("/account").text)
    for url, values in urls(path, tenant, issue_id, alert_id):
        for value in values:
            if method == "GET":
                answer = ui.get(url, params=dict.fromkeys(QUERY_KEYS, value), follow_redirects=False)
            else:
                form = {**dict.fromkeys(FORM_KEYS, value), "csrf_token": csrf}
                answer = ui.post(url, data=form, follow_redirects=False)
            assert answer.status_code < 500, (method, url, value, answer.text[:500])
            if answer.status_code >= 400:
                assert "<html" in answer.text and "Traceback" not in answer.text
