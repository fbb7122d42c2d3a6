"""``/error_tracking/alerts``, ``spike_detection_config`` and ``spike_events``: the contract.

Both prefixes, with and without the slash; scopes; PostHog's error bodies; secrets masked and
kept; private addresses refused by default; a test notification sent now.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.alerts.receiver import Answer, receiving
from tests.factories import Tenant
from trapline.alerts.models import Alert
from trapline.db.engine import Database

SLACK = "https://hooks.slack.com/services/T0AAA/B0BBB/abcdefSECRET"


def url(tenant: Tenant, prefix: str, *parts: str) -> str:
    return "/".join([f"{prefix}/{tenant.project_id}/error_tracking/alerts", *parts])


def create(client: TestClient, tenant: Tenant, prefix: str = "/api/projects", **body: Any) -> dict[str, Any]:
    body.setdefault("name", "payments")
    body.setdefault("trigger", {"type": "issue_created"})
    body.setdefault("destination", {"type": "slack", "url": SLACK})
    response = client.post(url(tenant, prefix) + "/", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "code", "detail", "attr"}
    return body


@pytest.mark.parametrize("slash", ["", "/"])
def test_create_list_retrieve_update_delete_under_both_prefixes(
    client: TestClient, tenant: Tenant, prefix: str, slash: str
):
    alert = create(
        client, tenant, prefix,
        trigger={"type": "issue_frequency", "threshold": 100, "window_minutes": 15},
        filters={"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": ["web"]}]},
        throttle={"max_messages": 10, "per_minutes": 60},
    )  # fmt: skip
    assert alert["name"] == "payments" and alert["enabled"] is True
    assert alert["trigger"] == {"type": "issue_frequency", "threshold": 100, "window_minutes": 15,
                                "interval_minutes": None}  # fmt: skip
    assert alert["throttle"] == {"max_messages": 10, "per_minutes": 60}
    assert alert["last_delivery"] is None
    headers = tenant.headers()
    listed = client.get(url(tenant, prefix) + slash, headers=headers).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == alert["id"]
    one = client.get(url(tenant, prefix, alert["id"]) + slash, headers=headers)
    assert one.status_code == 200 and one.json() == alert

    patched = client.patch(url(tenant, prefix, alert["id"]) + slash, json={"enabled": False, "throttle": None},
                           headers=headers)  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert (patched.json()["enabled"], patched.json()["throttle"]) == (False, None)
    assert patched.json()["trigger"]["threshold"] == 100  # not given: kept

    assert client.delete(url(tenant, prefix, alert["id"]) + slash, headers=headers).status_code == 204
    assert client.get(url(tenant, prefix, alert["id"]), headers=headers).status_code == 404


def test_secrets_are_masked_and_kept_when_sent_back(client: TestClient, tenant: Tenant, database: Database):
    alert = create(client, tenant, destination={"type": "slack", "url": SLACK})
    assert alert["destination"] == {"type": "slack", "url": "https://hooks.slack.com/••••••••"}
    hook = {"type": "webhook", "url": "https://hooks.example.com/t/abc123secret", "secret": "s3cr3t",
            "headers": {"Authorization": "Bearer tok"}}  # fmt: skip
    patched = client.patch(url(tenant, "/api/projects", alert["id"]), json={"destination": hook},
                           headers=tenant.headers()).json()  # fmt: skip
    assert patched["destination"] == {
        "type": "webhook", "url": "https://hooks.example.com/••••••••", "secret": "••••••••",
        "headers": {"Authorization": "••••••••"},
    }  # fmt: skip
    assert "abc123secret" not in str(patched) and "s3cr3t" not in str(patched) and "tok" not in str(patched)
    # Sending the masked form back (what a form round-trip does) keeps the secrets.
    again = client.patch(
        url(tenant, "/api/projects", alert["id"]),
        json={"destination": patched["destination"], "name": "renamed"},
        headers=tenant.headers(),
    )
    assert again.status_code == 200, again.text
    with database.session(write=False) as session:  # what is stored, not what is shown
        stored = session.get(Alert, uuid.UUID(alert["id"]))
        assert stored is not None
        assert stored.destination == {
            "url": hook["url"],
            "secret": "s3cr3t",
            "headers": {"Authorization": "Bearer tok"},
        }


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("http://127.0.0.1:9000/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://localhost:8000/hook", "localhost is this machine (loopback)"),
        ("http://[::ffff:192.168.0.1]/", "192.168.0.1 is a private address"),
    ],
)
def test_private_and_metadata_addresses_are_refused_by_default(
    client: TestClient, tenant: Tenant, target: str, why: str
):
    for kind in ("webhook", "slack"):
        body = error(client.post(url(tenant, "/api/projects"), json={
            "name": "x", "trigger": {"type": "issue_created"}, "destination": {"type": kind, "url": target},
        }, headers=tenant.headers()))  # fmt: skip
        assert body["attr"] == "destination__url"
        assert body["code"] == "forbidden_address"
        assert why in body["detail"]
        # The setting is named where it would help; metadata addresses stay refused with it.
        assert ("TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS" in body["detail"]) == ("metadata" not in why)


@pytest.mark.parametrize(
    ("body", "attr", "words"),
    [
        ({"trigger": {"type": "issue_exploded"}}, "trigger__type", "not a valid choice"),
        ({"trigger": {"type": "issue_frequency"}}, "trigger__threshold", "This field is required"),
        ({"trigger": {"type": "issue_created", "threshold": 5}}, "trigger__threshold", "applies only to"),
        ({"trigger": {"type": "issue_users", "threshold": 0}}, "trigger__threshold", "greater than or equal to 1"),
        ({"destination": {"type": "pigeon"}}, "destination__type", "not a valid choice"),
        ({"destination": {"type": "webhook"}}, "destination__url", "This field is required"),
        ({"destination": {"type": "webhook", "url": "ftp://x.example/"}}, "destination__url", "http:// or https://"),
        (
            {"destination": {"type": "webhook", "url": "https://h.example/", "headers": {"Idempotency-Key": "1"}}},
            "destination__headers",
            "set by Trapline",
        ),
        ({"destination": {"type": "email", "to": ["a@b.example"]}}, "destination__type", "TRAPLINE_SMTP_HOST"),
        ({"destination": {"type": "apprise", "url": "nonsense"}}, "destination__url", "apprise does not understand"),
        ({"destination": "https://hooks.example/"}, "destination", "Expected a JSON object"),
        (
            {"filters": {"type": "AND", "values": [{"key": "x", "operator": "regex", "value": "("}]}},
            "filters",
            "Invalid filters",
        ),
        ({"throttle": {"max_messages": 0, "per_minutes": 5}}, "throttle__max_messages", "greater than or equal"),
        ({"name": ""}, "name", "This field may not be blank."),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(
    client: TestClient, tenant: Tenant, body: dict[str, Any], attr: str, words: str
):
    full = {"name": "x", "trigger": {"type": "issue_created"}, "destination": {"type": "slack", "url": SLACK}, **body}
    answer = error(client.post(url(tenant, "/api/projects"), json=full, headers=tenant.headers()))
    assert answer["attr"] == attr, answer
    assert words in answer["detail"], answer


def test_required_fields(client: TestClient, tenant: Tenant):
    answer = error(client.post(url(tenant, "/api/projects"), json={"name": "x"}, headers=tenant.headers()))
    assert (answer["code"], answer["attr"]) == ("required", "trigger")


def test_scopes(client: TestClient, tenant: Tenant, other_tenant: Tenant):
    alert = create(client, tenant)
    base = url(tenant, "/api/projects")
    assert client.get(base, headers=tenant.headers("read")).status_code == 200
    assert client.get(f"{base}/{alert['id']}/deliveries", headers=tenant.headers("read")).status_code == 200
    denied = error(client.post(base, json={}, headers=tenant.headers("read")), 403)
    assert denied["detail"] == "API key missing required scope 'error_tracking:write'"
    assert client.post(f"{base}/{alert['id']}/test", headers=tenant.headers("read")).status_code == 403
    assert client.delete(f"{base}/{alert['id']}", headers=tenant.headers("read")).status_code == 403
    assert client.get(base, headers=tenant.headers("none")).status_code == 403
    assert client.get(base).status_code == 401
    # Another organization's key does not see this project at all.
    assert client.get(base, headers=other_tenant.headers()).status_code == 404


@pytest.mark.usefixtures("local_alerts")
def test_send_test_reports_what_the_receiver_said(client: TestClient, tenant: Tenant, prefix: str):
    with receiving(Answer(200), Answer(410, b"gone")) as receiver:
        alert = create(client, tenant, destination={"type": "webhook", "url": receiver.url + "/x"})
        first = client.post(url(tenant, prefix, alert["id"], "test"), headers=tenant.headers())
        second = client.post(url(tenant, prefix, alert["id"], "test/"), headers=tenant.headers())
        [sample, _] = receiver.received()
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["response_code"], first.json()["kind"]) == ("delivered", 200, "test")
    assert (second.json()["status"], second.json()["response_code"]) == ("failed", 410)
    assert second.json()["error"] == "HTTP 410: gone"
    body = sample.json()
    assert body["event"]["properties"]["test"] is True
    assert body["event"]["event"] == "$error_tracking_issue_created"
    assert sample.headers["idempotency-key"] == first.json()["id"]

    log = client.get(url(tenant, prefix, alert["id"], "deliveries"), headers=tenant.headers()).json()
    assert [d["status"] for d in log["results"]] == ["failed", "delivered"]  # newest first
    failed = client.get(url(tenant, prefix, "deliveries") + "?status=failed", headers=tenant.headers()).json()
    assert [d["id"] for d in failed["results"]] == [second.json()["id"]]
    retrieved = client.get(url(tenant, prefix, alert["id"]), headers=tenant.headers()).json()
    assert retrieved["last_delivery"]["id"] == second.json()["id"]


def test_unknown_alerts_are_404(client: TestClient, tenant: Tenant):
    missing = url(tenant, "/api/projects", "0192f7d6-0000-7000-8000-000000000000")
    assert error(client.get(missing, headers=tenant.headers()), 404)["code"] == "not_found"
    assert client.post(missing + "/test", headers=tenant.headers()).status_code == 404
    assert client.get(missing + "/deliveries", headers=tenant.headers()).status_code == 404
    assert client.patch(missing, json={"name": "x"}, headers=tenant.headers()).status_code == 404


# --- the spike detector ---------------------------------------------------------------------------


def test_spike_detection_config_has_posthogs_fields_and_defaults(client: TestClient, tenant: Tenant, prefix: str):
    base = f"{prefix}/{tenant.project_id}/error_tracking/spike_detection_config"
    config = client.get(base + "/", headers=tenant.headers("read"))
    assert config.status_code == 200
    assert config.json() == {"snooze_duration_minutes": 10, "multiplier": 10, "threshold": 500, "enabled": True}
    changed = client.patch(base + "/update_config/", json={"threshold": 50}, headers=tenant.headers("write"))
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"snooze_duration_minutes": 10, "multiplier": 10, "threshold": 50, "enabled": True}
    assert client.get(base, headers=tenant.headers()).json()["threshold"] == 50
    bad = error(client.patch(base + "/update_config", json={"multiplier": 0}, headers=tenant.headers()))
    assert bad["attr"] == "multiplier"
    assert client.patch(base + "/update_config", json={}, headers=tenant.headers("read")).status_code == 403


def test_spike_events_filter_by_issue_and_refuse_bad_ids(client: TestClient, tenant: Tenant, prefix: str):
    base = f"{prefix}/{tenant.project_id}/error_tracking/spike_events"
    empty = client.get(base + "/", headers=tenant.headers())
    assert empty.status_code == 200 and empty.json()["results"] == []
    bad = error(client.get(base + "?issue_ids=nope", headers=tenant.headers()))
    assert (bad["attr"], bad["detail"]) == ("issue_ids", "'nope' is not a valid issue id.")


def test_alerts_are_described_in_the_openapi_schema(client: TestClient):
    paths = client.get("/api/schema/").json()["paths"]
    for prefix in ("/api/environments/{project_id}", "/api/projects/{project_id}"):
        base = f"{prefix}/error_tracking/alerts"
        assert {"get", "post"} <= set(paths[base])
        assert {"get", "patch", "put", "delete"} <= set(paths[f"{base}/{{id}}"])
        assert "post" in paths[f"{base}/{{id}}/test"]
        assert "get" in paths[f"{base}/{{id}}/deliveries"]
        assert "patch" in paths[f"{prefix}/error_tracking/spike_detection_config/update_config"]
        assert "get" in paths[f"{prefix}/error_tracking/spike_events"]
