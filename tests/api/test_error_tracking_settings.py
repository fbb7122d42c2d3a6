"""``/error_tracking/settings``: ``retrieve_settings``, ``update_settings`` and ``setup_status``.

Both prefixes, with and without the slash; scopes; other organisations' projects; DRF's
validation bodies for an ``IntegerField(min_value=1, allow_null=True)``; partial updates;
setup status from stored events of posthog-js, posthog-python and posthog-node.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_alerts import error
from tests.factories import Tenant
from tests.issue_data import ago, make_event, make_issue
from trapline.db.engine import Database
from trapline.limits.models import ErrorTrackingSettings
from trapline.projects.models import Project

POSTHOG_FIELDS = (
    "project_rate_limit_value",
    "project_rate_limit_bucket_size_minutes",
    "per_issue_rate_limit_value",
    "per_issue_rate_limit_bucket_size_minutes",
)
EMPTY = {**dict.fromkeys(POSTHOG_FIELDS), "retention_days": None, "max_events_per_issue": None}


def url(tenant: Tenant, prefix: str, action: str) -> str:
    return f"{prefix}/{tenant.project_id}/error_tracking/settings/{action}"


def patch(client: TestClient, tenant: Tenant, body: Any, prefix: str = "/api/projects", scope: str = "*") -> Any:
    return client.patch(url(tenant, prefix, "update_settings/"), json=body, headers=tenant.headers(scope))


# --- retrieve_settings and update_settings ----------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_settings_are_read_and_changed_under_both_prefixes(client: TestClient, tenant: Tenant, prefix: str, slash: str):
    got = client.get(url(tenant, prefix, "retrieve_settings") + slash, headers=tenant.headers("read"))
    assert got.status_code == 200
    assert got.json() == EMPTY  # no row yet: nothing limited, the installation's retention
    changed = client.patch(
        url(tenant, prefix, "update_settings") + slash,
        json={"project_rate_limit_value": 5000, "project_rate_limit_bucket_size_minutes": 60},
        headers=tenant.headers("write"),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**EMPTY, "project_rate_limit_value": 5000, "project_rate_limit_bucket_size_minutes": 60}
    again = client.get(url(tenant, prefix, "retrieve_settings") + slash, headers=tenant.headers())
    assert again.json() == changed.json()


def test_an_update_keeps_the_fields_it_leaves_out_and_answers_the_whole_object(client: TestClient, tenant: Tenant):
    first = patch(client, tenant, {"project_rate_limit_value": 2000, "per_issue_rate_limit_value": 50})
    assert first.status_code == 200
    response = patch(client, tenant, {"per_issue_rate_limit_value": 75})
    assert response.status_code == 200
    assert response.json() == {**EMPTY, "project_rate_limit_value": 2000, "per_issue_rate_limit_value": 75}
    # an empty update changes nothing and still answers the object
    assert patch(client, tenant, {}).json() == response.json()


def test_null_removes_a_limit(client: TestClient, tenant: Tenant, database: Database):
    patch(client, tenant, {"project_rate_limit_value": 1000, "per_issue_rate_limit_value": 10})
    response = patch(client, tenant, {"project_rate_limit_value": None})
    assert response.status_code == 200
    assert response.json() == {**EMPTY, "per_issue_rate_limit_value": 10}
    with database.session(write=False) as session:
        row = session.get(ErrorTrackingSettings, tenant.project_id)
        assert row is not None
        assert (row.project_rate_limit_value, row.per_issue_rate_limit_value) == (None, 10)


def test_retention_and_events_per_issue_are_trapline_extensions(client: TestClient, tenant: Tenant):
    response = patch(client, tenant, {"retention_days": 30, "max_events_per_issue": 1000})
    assert response.status_code == 200
    assert response.json() == {**EMPTY, "retention_days": 30, "max_events_per_issue": 1000}
    assert patch(client, tenant, {"retention_days": 36_500}).json()["retention_days"] == 36_500
    too_long = error(patch(client, tenant, {"retention_days": 36_501}))
    assert too_long == {
        "type": "validation_error",
        "code": "max_value",
        "detail": "Ensure this value is less than or equal to 36500.",
        "attr": "retention_days",
    }
    assert error(patch(client, tenant, {"max_events_per_issue": 0}))["attr"] == "max_events_per_issue"
    assert patch(client, tenant, {"retention_days": None}).json()["retention_days"] is None


@pytest.mark.parametrize(
    ("value", "code", "detail"),
    [
        (0, "min_value", "Ensure this value is greater than or equal to 1."),
        (-1, "min_value", "Ensure this value is greater than or equal to 1."),
        ("0", "min_value", "Ensure this value is greater than or equal to 1."),
        ("abc", "invalid_input", "A valid integer is required."),
        (1.5, "invalid_input", "A valid integer is required."),
        ("1.5", "invalid_input", "A valid integer is required."),
        (True, "invalid_input", "A valid integer is required."),
        ([1], "invalid_input", "A valid integer is required."),
        ({"value": 1}, "invalid_input", "A valid integer is required."),
        ("", "invalid_input", "A valid integer is required."),
        ("9" * 1001, "max_string_length", "String value too large."),
        (2**31, "max_value", "Ensure this value is less than or equal to 2147483647."),
    ],
)
@pytest.mark.parametrize("field", [*POSTHOG_FIELDS, "max_events_per_issue"])
def test_bad_values_are_refused_in_drfs_words(
    client: TestClient, tenant: Tenant, field: str, value: Any, code: str, detail: str
):
    body = error(patch(client, tenant, {field: value}))
    assert body == {"type": "validation_error", "code": code, "detail": detail, "attr": field}


@pytest.mark.parametrize(("value", "stored"), [("7", 7), (7.0, 7), ("12.00", 12), (" 8 ", 8)])
def test_integers_are_read_as_drf_reads_them(client: TestClient, tenant: Tenant, value: Any, stored: int):
    response = patch(client, tenant, {"per_issue_rate_limit_bucket_size_minutes": value})
    assert response.status_code == 200, response.text
    assert response.json()["per_issue_rate_limit_bucket_size_minutes"] == stored


def test_a_refused_update_changes_nothing_and_names_the_first_bad_field(client: TestClient, tenant: Tenant):
    patch(client, tenant, {"project_rate_limit_value": 100})
    body = error(
        patch(client, tenant, {"per_issue_rate_limit_value": 0, "project_rate_limit_value": 5, "retention_days": "x"})
    )
    # DRF reports the serializer's fields in their order, not the body's
    assert body["attr"] == "per_issue_rate_limit_value"
    assert client.get(url(tenant, "/api/projects", "retrieve_settings"), headers=tenant.headers()).json() == {
        **EMPTY,
        "project_rate_limit_value": 100,
    }


def test_unknown_fields_are_ignored(client: TestClient, tenant: Tenant):
    response = patch(client, tenant, {"ingestion_enabled": False, "per_issue_rate_limit_value": 3})
    assert response.status_code == 200
    assert response.json() == {**EMPTY, "per_issue_rate_limit_value": 3}


def test_form_bodies_are_read_like_json(client: TestClient, tenant: Tenant):
    # curl -X PATCH … -d project_rate_limit_value=10
    response = client.patch(
        url(tenant, "/api/environments", "update_settings/"),
        data={"project_rate_limit_value": "10"},
        headers=tenant.headers(),
    )
    assert response.status_code == 200
    assert response.json()["project_rate_limit_value"] == 10


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["retrieve_settings", "setup_status"])
def test_reading_needs_error_tracking_read(client: TestClient, tenant: Tenant, prefix: str, action: str):
    denied = error(client.get(url(tenant, prefix, action), headers=tenant.headers("none")), 403)
    assert denied == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'error_tracking:read'",
        "attr": None,
    }
    assert client.get(url(tenant, prefix, action), headers=tenant.headers("read")).status_code == 200
    assert client.get(url(tenant, prefix, action), headers=tenant.headers("write")).status_code == 200
    assert error(client.get(url(tenant, prefix, action)), 401)["code"] == "not_authenticated"


def test_updating_needs_error_tracking_write(client: TestClient, tenant: Tenant, prefix: str):
    body = {"per_issue_rate_limit_value": 100}
    for scope in ("read", "none"):
        denied = error(patch(client, tenant, body, prefix, scope), 403)
        assert denied["detail"] == "API key missing required scope 'error_tracking:write'"
    assert client.get(url(tenant, prefix, "retrieve_settings"), headers=tenant.headers()).json() == EMPTY
    assert patch(client, tenant, body, prefix, "write").status_code == 200


@pytest.mark.parametrize("action", ["retrieve_settings", "update_settings", "setup_status"])
def test_another_organisations_project_is_not_found(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, action: str
):
    path = url(other_tenant, "/api/projects", action)
    method = "PATCH" if action == "update_settings" else "GET"
    response = client.request(method, path, json={"project_rate_limit_value": 5}, headers=tenant.headers())
    assert error(response, 404)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("PUT", "update_settings"),
        ("POST", "update_settings"),
        ("DELETE", "update_settings"),
        ("GET", "update_settings"),
        ("POST", "retrieve_settings"),
        ("PATCH", "retrieve_settings"),
        ("PATCH", "setup_status"),
        ("PUT", "setup_status/"),
    ],
)
def test_other_methods_are_405_in_posthogs_shape(client: TestClient, tenant: Tenant, method: str, action: str):
    response = client.request(method, url(tenant, "/api/projects", action), json={}, headers=tenant.headers())
    assert error(response, 405) == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "detail": f'Method "{method}" not allowed.',
        "attr": None,
    }


def test_there_is_nothing_at_settings_itself(client: TestClient, tenant: Tenant):
    response = client.get(f"/api/projects/{tenant.project_id}/error_tracking/settings/", headers=tenant.headers())
    assert error(response, 404)["code"] == "not_found"


def test_the_actions_are_described_in_the_openapi_schema(client: TestClient):
    schema = client.get("/api/schema/").json()
    paths = schema["paths"]
    for prefix, op_prefix in (("/api/environments/{project_id}", "environments_"), ("/api/projects/{project_id}", "")):
        base = f"{prefix}/error_tracking/settings"
        assert set(paths[f"{base}/retrieve_settings"]) == {"get"}
        assert set(paths[f"{base}/update_settings"]) == {"patch"}
        assert set(paths[f"{base}/setup_status"]) == {"get"}
        ids = {
            paths[f"{base}/retrieve_settings"]["get"]["operationId"],
            paths[f"{base}/update_settings"]["patch"]["operationId"],
            paths[f"{base}/setup_status"]["get"]["operationId"],
        }
        assert ids == {
            f"{op_prefix}error_tracking_settings_retrieve_settings_retrieve",
            f"{op_prefix}error_tracking_settings_update_settings_partial_update",
            f"{op_prefix}error_tracking_settings_setup_status_retrieve",
        }
    components = schema["components"]["schemas"]
    assert set(components["ErrorTrackingSettingsOut"]["properties"]) == set(EMPTY)
    assert set(components["SetupStatusOut"]["required"]) >= {
        "project_autocapture_enabled", "remote_config_autocapture_enabled", "has_issues", "recent_data_available",
        "recent_period_days", "recent_event_count", "recent_exception_count", "observed_sdks", "warnings",
    }  # fmt: skip


# --- setup_status --------------------------------------------------------------------------------


def status(client: TestClient, tenant: Tenant, prefix: str = "/api/projects") -> dict[str, Any]:
    response = client.get(url(tenant, prefix, "setup_status/"), headers=tenant.headers("read"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_setup_status_of_a_project_without_events(client: TestClient, tenant: Tenant, prefix: str):
    assert status(client, tenant, prefix) == {
        "project_autocapture_enabled": True,
        "remote_config_autocapture_enabled": True,
        "has_issues": False,
        "recent_data_available": True,
        "recent_period_days": 7,
        "recent_event_count": 0,
        "recent_exception_count": 0,
        "last_event_at": None,
        "last_exception_at": None,
        "observed_sdks": [],
        "warnings": [],
    }


def test_setup_status_counts_the_recent_events_of_each_sdk(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp-a"])
        for hours, version in ((1, "1.250.0"), (30, "1.249.0"), (3, "1.249.5")):
            make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=hours), library="web",
                       properties={"$lib_version": version})  # fmt: skip
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(days=8), library="web")  # before the period
        for hours in (2, 5):
            make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=hours), library="posthog-python",
                       properties={"$lib_version": "6.7.0"})  # fmt: skip
        # captured by hand (captureException marks it handled), not by autocapture
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(minutes=30), library="posthog-node",
                   properties={"$exception_handled": True, "$lib_version": "5.9.1"})  # fmt: skip
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=4), library=None)
        make_issue(session, other_tenant.project_id, ["fp-o"])
        make_event(session, other_tenant.project_id, "fp-o", library="posthog-ruby")
        newest = ago(minutes=30)

    body = status(client, tenant)
    assert body["has_issues"] is True
    assert (body["recent_event_count"], body["recent_exception_count"]) == (7, 7)
    assert body["last_event_at"] == body["last_exception_at"] == newest.isoformat().replace("+00:00", "Z")
    assert body["observed_sdks"] == [
        {
            "library": "posthog-node",
            "event_count": 1,
            "latest_version": "5.9.1",
            "last_seen_at": newest.isoformat().replace("+00:00", "Z"),
            "autocapture_configuration": "local",
            "local_option": "enableExceptionAutocapture",
        },
        {
            "library": "posthog-python",
            "event_count": 2,
            "latest_version": "6.7.0",
            "last_seen_at": ago(hours=2).isoformat().replace("+00:00", "Z"),
            "autocapture_configuration": "unknown",
            "local_option": None,
        },
        {
            "library": "web",
            "event_count": 3,
            "latest_version": "1.250.0",
            "last_seen_at": ago(hours=1).isoformat().replace("+00:00", "Z"),
            "autocapture_configuration": "project_setting",
            "local_option": None,
        },
    ]
    [warning] = body["warnings"]
    assert warning["warning_code"] == "node_autocapture_requires_local_configuration"
    assert "enableExceptionAutocapture: true" in warning["message"]

    # an uncaught exception posthog-node captured itself: its autocapture is on
    with database.session(write=True) as session:
        make_event(session, tenant.project_id, "fp-a", timestamp=ago(hours=6), library="posthog-node",
                   properties={"$exception_handled": False})  # fmt: skip
    body = status(client, tenant)
    assert body["warnings"] == []
    assert [(sdk["library"], sdk["event_count"]) for sdk in body["observed_sdks"]] == [
        ("posthog-node", 2), ("posthog-python", 2), ("web", 3),
    ]  # fmt: skip


def test_setup_status_lists_libraries_posthog_does_not_know_as_unknown(
    client: TestClient, tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        make_issue(session, tenant.project_id, ["fp"])
        make_event(session, tenant.project_id, "fp", library="sentry.python")
    [sdk] = status(client, tenant)["observed_sdks"]
    assert (sdk["library"], sdk["autocapture_configuration"], sdk["local_option"]) == ("sentry.python", "unknown", None)
    assert sdk["latest_version"] is None


def test_setup_status_shows_the_project_setting_and_what_remote_config_serves(
    client: TestClient, tenant: Tenant, database: Database
):
    with database.session(write=True) as session:
        project = session.get(Project, tenant.project_id)
        assert project is not None
        project.autocapture_exceptions_opt_in = False
        session.commit()
    body = status(client, tenant)
    assert (body["project_autocapture_enabled"], body["remote_config_autocapture_enabled"]) == (False, False)
    served = client.get(f"/array/{tenant.project_token}/config").json()
    assert served["autocaptureExceptions"] is False
