"""``/error_tracking/autocapture_controls``: one object per project and library, DRF's validation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Tenant, make_project
from trapline.autocapture import service
from trapline.autocapture.models import AutocaptureControls
from trapline.db.engine import Database

FIELDS = {
    "id",
    "library",
    "match_type",
    "sample_rate",
    "linked_feature_flag",
    "event_triggers",
    "url_triggers",
    "url_blocklist",
}
DEFAULTS = {
    "library": "web",
    "match_type": "all",
    "sample_rate": "1.00",
    "linked_feature_flag": None,
    "event_triggers": [],
    "url_triggers": [],
    "url_blocklist": [],
}
FULL = {
    "match_type": "any",
    "sample_rate": "0.25",
    "linked_feature_flag": {"id": 7, "key": "capture-errors", "variant": "on"},
    "event_triggers": ["$pageview", "checkout"],
    "url_triggers": [{"url": "^https://app\\.example\\.com/", "matching": "regex"}],
    "url_blocklist": [{"url": "/admin", "matching": "regex"}],
}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def url(prefix: str, project_id: int, rest: str = "") -> str:
    return f"{prefix}/{project_id}/error_tracking/autocapture_controls{rest}"


def invalid(code: str, detail: str, attr: str | None) -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def create(client: TestClient, tenant: Tenant, prefix: str, **fields: Any) -> dict[str, Any]:
    response = client.post(url(prefix, tenant.project_id), json=fields, headers=tenant.headers())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def fetch(client: TestClient, tenant: Tenant, prefix: str, controls_id: str) -> dict[str, Any]:
    response = client.get(url(prefix, tenant.project_id, f"/{controls_id}"), headers=tenant.headers("read"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- create -----------------------------------------------------------------------------------


def test_create_with_defaults(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), json={}, headers=tenant.headers())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    assert body == {"id": body["id"], **DEFAULTS}
    assert uuid.UUID(body["id"])
    assert fetch(client, tenant, prefix, body["id"]) == body


def test_create_without_a_body(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), headers=tenant.headers("write"))
    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], **DEFAULTS}


def test_create_with_every_field(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix, **FULL)
    assert body == {"id": body["id"], "library": "web", **FULL}
    assert fetch(client, tenant, prefix, body["id"]) == body


@pytest.mark.parametrize("library", ["ios", "web", "undefined", None, 5])
def test_library_is_read_only(client: TestClient, tenant: Tenant, prefix: str, library: Any):
    body = create(client, tenant, prefix, library=library, id=str(uuid.uuid4()))
    assert body["library"] == "web"
    assert body == {"id": body["id"], **DEFAULTS}


def test_create_when_controls_exist_returns_them_unchanged(client: TestClient, tenant: Tenant, prefix: str):
    first = create(client, tenant, prefix, sample_rate=0.5, event_triggers=["a"])
    again = client.post(url(prefix, tenant.project_id), json=FULL, headers=tenant.headers())
    assert again.status_code == 200
    assert again.json() == first
    assert fetch(client, tenant, prefix, first["id"]) == first
    listed = client.get(url(prefix, tenant.project_id), headers=tenant.headers())
    assert listed.json()["count"] == 1


def test_create_racing_another_create(client: TestClient, tenant: Tenant, prefix: str, monkeypatch: pytest.MonkeyPatch):
    first = create(client, tenant, prefix, sample_rate="0.4")
    looked_up: list[int] = []

    def checked_before_the_other_commit(session: Any, project_id: int) -> AutocaptureControls | None:
        # The first look finds nothing, as when two requests pass the check together.
        looked_up.append(project_id)
        return None if len(looked_up) == 1 else real(session, project_id)

    real = service.web_controls
    monkeypatch.setattr(service, "web_controls", checked_before_the_other_commit)
    response = client.post(url(prefix, tenant.project_id), json={"sample_rate": "0.9"}, headers=tenant.headers())
    assert response.status_code == 200
    assert response.json() == first
    assert looked_up == [tenant.project_id, tenant.project_id]
    assert fetch(client, tenant, prefix, first["id"]) == first


def test_seed_curl_form_body_under_json_content_type(client: TestClient, tenant: Tenant, prefix: str):
    # PostHog's docs: curl -H 'Content-Type: application/json' -d library=undefined
    headers = {**tenant.headers(), "Content-Type": "application/json"}
    created = client.post(url(prefix, tenant.project_id), content=b"library=undefined", headers=headers)
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], **DEFAULTS}

    updated = client.patch(
        url(prefix, tenant.project_id, f"/{body['id']}"), content=b"library=undefined", headers=headers
    )
    assert updated.status_code == 200
    assert updated.json() == body


def test_create_from_a_form(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(
        url(prefix, tenant.project_id),
        data={"match_type": "any", "sample_rate": "0.3", "event_triggers": '["a", "b"]'},
        headers=tenant.headers(),
    )
    assert response.status_code == 201
    body = response.json()
    expected = {"id": body["id"], **DEFAULTS, "match_type": "any", "sample_rate": "0.30", "event_triggers": ["a", "b"]}
    assert body == expected


def test_create_with_a_trailing_slash(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id, "/"), json={"sample_rate": "0.1"}, headers=tenant.headers())
    assert response.status_code == 201
    assert response.json()["sample_rate"] == "0.10"


def test_read_key_cannot_create(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), json={}, headers=tenant.headers("read"))
    assert response.status_code == 403
    listed = client.get(url(prefix, tenant.project_id), headers=tenant.headers("read"))
    assert listed.json()["count"] == 0


# --- sample_rate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.5, "0.50"),
        ("0.5", "0.50"),
        ("0.50", "0.50"),
        (0, "0.00"),
        ("0", "0.00"),
        (1, "1.00"),
        ("1.00", "1.00"),
        (1.0, "1.00"),
        (0.05, "0.05"),
        ("0.99", "0.99"),
        (" 0.25 ", "0.25"),
        ("1e-1", "0.10"),
        ("-0", "0.00"),
    ],
)
def test_sample_rate_accepts_numbers_and_strings(
    client: TestClient, tenant: Tenant, prefix: str, value: Any, shown: str
):
    body = create(client, tenant, prefix, sample_rate=value)
    assert body["sample_rate"] == shown
    # stored exactly, not through a float
    assert fetch(client, tenant, prefix, body["id"])["sample_rate"] == shown


SAMPLE_RATE_ERRORS = [
    ("abc", "invalid_input", "A valid number is required."),
    ("", "invalid_input", "A valid number is required."),
    ("NaN", "invalid_input", "A valid number is required."),
    ("Infinity", "invalid_input", "A valid number is required."),
    (True, "invalid_input", "A valid number is required."),
    (False, "invalid_input", "A valid number is required."),
    ([0.5], "invalid_input", "A valid number is required."),
    ({"rate": 0.5}, "invalid_input", "A valid number is required."),
    (None, "null", "This field may not be null."),
    ("0.555", "max_decimal_places", "Ensure that there are no more than 2 decimal places."),
    (0.001, "max_decimal_places", "Ensure that there are no more than 2 decimal places."),
    ("10", "max_whole_digits", "Ensure that there are no more than 1 digits before the decimal point."),
    (10, "max_whole_digits", "Ensure that there are no more than 1 digits before the decimal point."),
    ("1.5", "max_value", "Ensure this value is less than or equal to 1."),
    (1.01, "max_value", "Ensure this value is less than or equal to 1."),
    (2, "max_value", "Ensure this value is less than or equal to 1."),
    ("-0.5", "min_value", "Ensure this value is greater than or equal to 0."),
    (-1, "min_value", "Ensure this value is greater than or equal to 0."),
    ("100.5", "max_digits", "Ensure that there are no more than 3 digits in total."),
    ("0.1234", "max_digits", "Ensure that there are no more than 3 digits in total."),
    ("1" * 1001, "max_string_length", "String value too large."),
]


@pytest.mark.parametrize(("value", "code", "detail"), SAMPLE_RATE_ERRORS)
def test_invalid_sample_rate_on_create(
    client: TestClient, tenant: Tenant, prefix: str, value: Any, code: str, detail: str
):
    response = client.post(url(prefix, tenant.project_id), json={"sample_rate": value}, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid(code, detail, "sample_rate")
    assert client.get(url(prefix, tenant.project_id), headers=tenant.headers()).json()["count"] == 0


@pytest.mark.parametrize(("value", "code", "detail"), SAMPLE_RATE_ERRORS)
def test_invalid_sample_rate_on_update(
    client: TestClient, tenant: Tenant, prefix: str, value: Any, code: str, detail: str
):
    created = create(client, tenant, prefix, sample_rate="0.4")
    response = client.patch(
        url(prefix, tenant.project_id, f"/{created['id']}"), json={"sample_rate": value}, headers=tenant.headers()
    )
    assert response.status_code == 400
    assert response.json() == invalid(code, detail, "sample_rate")
    assert fetch(client, tenant, prefix, created["id"]) == created


def test_invalid_sample_rate_in_a_form(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), data={"sample_rate": "1.5"}, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("max_value", "Ensure this value is less than or equal to 1.", "sample_rate")


# --- other fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"match_type": "some"}, invalid("invalid_choice", '"some" is not a valid choice.', "match_type")),
        ({"match_type": ""}, invalid("invalid_choice", '"" is not a valid choice.', "match_type")),
        ({"match_type": "ALL"}, invalid("invalid_choice", '"ALL" is not a valid choice.', "match_type")),
        ({"match_type": None}, invalid("null", "This field may not be null.", "match_type")),
        (
            {"event_triggers": "x"},
            invalid("not_a_list", 'Expected a list of items but got type "str".', "event_triggers"),
        ),
        (
            {"event_triggers": {"a": 1}},
            invalid("not_a_list", 'Expected a list of items but got type "dict".', "event_triggers"),
        ),
        ({"event_triggers": [None]}, invalid("null", "This field may not be null.", "event_triggers__0")),
        ({"event_triggers": ["a", None]}, invalid("null", "This field may not be null.", "event_triggers__1")),
        ({"event_triggers": [True]}, invalid("invalid_input", "Not a valid string.", "event_triggers__0")),
        ({"event_triggers": [{"a": 1}]}, invalid("invalid_input", "Not a valid string.", "event_triggers__0")),
        ({"url_triggers": "x"}, invalid("not_a_list", 'Expected a list of items but got type "str".', "url_triggers")),
        (
            {"url_blocklist": 5},
            invalid("not_a_list", 'Expected a list of items but got type "int".', "url_blocklist"),
        ),
    ],
)
def test_invalid_fields(client: TestClient, tenant: Tenant, prefix: str, fields: dict[str, Any], error: dict[str, Any]):
    response = client.post(url(prefix, tenant.project_id), json=fields, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == error

    created = create(client, tenant, prefix)
    response = client.patch(url(prefix, tenant.project_id, f"/{created['id']}"), json=fields, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == error
    assert fetch(client, tenant, prefix, created["id"]) == created


def test_event_trigger_numbers_are_read_as_strings(client: TestClient, tenant: Tenant, prefix: str):
    body = create(client, tenant, prefix, event_triggers=["a", 1])
    assert body["event_triggers"] == ["a", "1"]


def test_a_json_array_body_is_refused(client: TestClient, tenant: Tenant, prefix: str):
    response = client.post(url(prefix, tenant.project_id), json=[FULL], headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("invalid_input", "Invalid data. Expected a dictionary, but got list.", None)


# --- list -------------------------------------------------------------------------------------


def test_list_is_empty_at_first(client: TestClient, tenant: Tenant, prefix: str):
    response = client.get(url(prefix, tenant.project_id), headers=tenant.headers("read"))
    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_list(client: TestClient, tenant: Tenant, prefix: str):
    created = create(client, tenant, prefix, **FULL)
    for path in ("", "/", "?library=web", "/?library=web"):
        response = client.get(url(prefix, tenant.project_id, path), headers=tenant.headers("read"))
        assert response.status_code == 200, path
        assert response.json() == {"count": 1, "next": None, "previous": None, "results": [created]}


@pytest.mark.parametrize("library", ["ios", "WEB"])
def test_list_with_an_unknown_library(client: TestClient, tenant: Tenant, prefix: str, library: str):
    response = client.get(url(prefix, tenant.project_id), params={"library": library}, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == invalid("invalid_choice", f'"{library}" is not a valid choice.', "library")


def test_list_shows_only_this_projects_controls(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, database: Database, prefix: str
):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    theirs = client.post(url(prefix, second.id), json={"sample_rate": "0.2"}, headers=tenant.headers())
    assert theirs.status_code == 201
    other_orgs = client.post(url(prefix, other_tenant.project_id), json={}, headers=other_tenant.headers())
    assert other_orgs.status_code == 201

    response = client.get(url(prefix, tenant.project_id), headers=tenant.headers())
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}

    # the first controls of this project are created, not found elsewhere
    mine = client.post(url(prefix, tenant.project_id), json={"sample_rate": "0.9"}, headers=tenant.headers())
    assert mine.status_code == 201
    assert mine.json()["id"] not in (theirs.json()["id"], other_orgs.json()["id"])
    assert mine.json()["sample_rate"] == "0.90"
    listed = client.get(url(prefix, tenant.project_id), headers=tenant.headers()).json()
    assert [c["id"] for c in listed["results"]] == [mine.json()["id"]]


# --- retrieve ---------------------------------------------------------------------------------


def test_retrieve(client: TestClient, tenant: Tenant, prefix: str):
    created = create(client, tenant, prefix, **FULL)
    for path in (f"/{created['id']}", f"/{created['id']}/"):
        response = client.get(url(prefix, tenant.project_id, path), headers=tenant.headers("read"))
        assert response.status_code == 200
        assert response.json() == created


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("controls_id", [str(uuid.uuid4()), "nope", "123", "web"])
def test_unknown_or_malformed_id_is_not_found(
    client: TestClient, tenant: Tenant, prefix: str, method: str, controls_id: str
):
    create(client, tenant, prefix)
    response = client.request(
        method, url(prefix, tenant.project_id, f"/{controls_id}"), json={}, headers=tenant.headers()
    )
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_another_projects_controls_are_not_reachable(
    client: TestClient, tenant: Tenant, database: Database, prefix: str, method: str
):
    with database.session(write=True) as session:
        second = make_project(session, tenant.organization_id)
    theirs = client.post(url(prefix, second.id), json={"sample_rate": "0.2"}, headers=tenant.headers())
    assert theirs.status_code == 201
    controls_id = theirs.json()["id"]

    response = client.request(
        method, url(prefix, tenant.project_id, f"/{controls_id}"), json={"sample_rate": "0.7"}, headers=tenant.headers()
    )
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    # untouched in its own project
    still = client.get(url(prefix, second.id, f"/{controls_id}"), headers=tenant.headers())
    assert still.status_code == 200
    assert still.json() == theirs.json()


# --- update -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_changes_only_the_given_fields(client: TestClient, tenant: Tenant, prefix: str, method: str):
    created = create(client, tenant, prefix, **FULL)
    response = client.request(
        method, url(prefix, tenant.project_id, f"/{created['id']}"), json={"sample_rate": 0.3}, headers=tenant.headers()
    )
    assert response.status_code == 200
    expected = {**created, "sample_rate": "0.30"}
    assert response.json() == expected
    assert fetch(client, tenant, prefix, created["id"]) == expected


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_every_field(client: TestClient, tenant: Tenant, prefix: str, method: str):
    created = create(client, tenant, prefix)
    response = client.request(
        method,
        url(prefix, tenant.project_id, f"/{created['id']}/"),
        json={**FULL, "library": "android", "id": str(uuid.uuid4())},
        headers=tenant.headers("write"),
    )
    assert response.status_code == 200
    expected = {"id": created["id"], "library": "web", **FULL}
    assert response.json() == expected
    assert fetch(client, tenant, prefix, created["id"]) == expected


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_with_an_empty_body_changes_nothing(client: TestClient, tenant: Tenant, prefix: str, method: str):
    created = create(client, tenant, prefix, **FULL)
    for kwargs in ({"json": {}}, {}):
        response = client.request(
            method, url(prefix, tenant.project_id, f"/{created['id']}"), headers=tenant.headers(), **kwargs
        )
        assert response.status_code == 200
        assert response.json() == created


def test_update_can_clear_values(client: TestClient, tenant: Tenant, prefix: str):
    created = create(client, tenant, prefix, **FULL)
    cleared = {"linked_feature_flag": None, "event_triggers": [], "url_triggers": [], "url_blocklist": []}
    response = client.patch(url(prefix, tenant.project_id, f"/{created['id']}"), json=cleared, headers=tenant.headers())
    assert response.status_code == 200
    expected = {**created, **cleared}
    assert response.json() == expected
    assert fetch(client, tenant, prefix, created["id"]) == expected


def test_update_from_a_form(client: TestClient, tenant: Tenant, prefix: str):
    created = create(client, tenant, prefix)
    response = client.patch(
        url(prefix, tenant.project_id, f"/{created['id']}"),
        data={"match_type": "any", "sample_rate": "0", "linked_feature_flag": '{"id": 1, "key": "f"}'},
        headers=tenant.headers(),
    )
    assert response.status_code == 200
    expected = {**created, "match_type": "any", "sample_rate": "0.00", "linked_feature_flag": {"id": 1, "key": "f"}}
    assert response.json() == expected
    assert fetch(client, tenant, prefix, created["id"]) == expected


def test_read_key_cannot_update_or_delete(client: TestClient, tenant: Tenant, prefix: str):
    created = create(client, tenant, prefix)
    target = url(prefix, tenant.project_id, f"/{created['id']}")
    for method in ("PATCH", "PUT", "DELETE"):
        response = client.request(method, target, json={"sample_rate": "0"}, headers=tenant.headers("read"))
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert fetch(client, tenant, prefix, created["id"]) == created


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_delete_then_create_again(client: TestClient, tenant: Tenant, prefix: str, slash: str):
    created = create(client, tenant, prefix, **FULL)
    target = url(prefix, tenant.project_id, f"/{created['id']}{slash}")

    response = client.delete(target, headers=tenant.headers("write"))
    assert response.status_code == 204
    assert response.content == b""

    assert client.get(target, headers=tenant.headers()).status_code == 404
    again = client.delete(target, headers=tenant.headers())
    assert again.status_code == 404
    assert again.json() == NOT_FOUND
    assert client.get(url(prefix, tenant.project_id), headers=tenant.headers()).json()["count"] == 0

    recreated = client.post(url(prefix, tenant.project_id), json={}, headers=tenant.headers())
    assert recreated.status_code == 201
    assert recreated.json() == {"id": recreated.json()["id"], **DEFAULTS}
    assert recreated.json()["id"] != created["id"]


def test_both_prefixes_reach_the_same_controls(client: TestClient, tenant: Tenant):
    created = create(client, tenant, "/api/environments", sample_rate="0.6")
    assert fetch(client, tenant, "/api/projects", created["id"]) == created
    again = client.post(url("/api/projects", tenant.project_id), json={}, headers=tenant.headers())
    assert again.status_code == 200
    assert again.json() == created
