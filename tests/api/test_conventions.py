"""The REST API's manners, shared by every resource: paths, bodies, errors, pagination."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import Tenant
from trapline.app import create_app
from trapline.db.engine import Database
from trapline.settings import Settings


def base(prefix: str, tenant: Tenant) -> str:
    return f"{prefix}/{tenant.project_id}/error_tracking"


def make_releases(client: TestClient, tenant: Tenant, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = client.post(
            f"/api/projects/{tenant.project_id}/error_tracking/releases",
            json={"version": f"1.{n}", "project": "web"},
            headers=tenant.headers(),
        )
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


@pytest.mark.parametrize("slash", ["", "/"])
def test_both_prefixes_with_and_without_slash_serve_the_same_data(
    client: TestClient, tenant: Tenant, prefix: str, slash: str
):
    [release_id] = make_releases(client, tenant, 1)
    listed = client.get(f"{base(prefix, tenant)}/releases{slash}", headers=tenant.headers())
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["results"]] == [release_id]
    one = client.get(f"{base(prefix, tenant)}/releases/{release_id}{slash}", headers=tenant.headers())
    assert one.status_code == 200
    assert one.json()["id"] == release_id


def test_pagination_links_are_absolute_and_walk_the_whole_list(client: TestClient, tenant: Tenant, prefix: str):
    created = make_releases(client, tenant, 5)
    url = f"{base(prefix, tenant)}/releases/?limit=2"
    seen: list[str] = []
    pages = []
    while url:
        response = client.get(url, headers=tenant.headers())
        assert response.status_code == 200
        page = response.json()
        assert page["count"] == 5
        pages.append(page)
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
        if url:
            assert url.startswith(f"http://testserver{base(prefix, tenant)}/releases/?")
    assert sorted(seen) == sorted(created)
    assert len(pages) == 3
    assert pages[0]["previous"] is None
    # previous of the second page drops offset (DRF does), of the third keeps it
    assert pages[1]["previous"] == f"http://testserver{base(prefix, tenant)}/releases/?limit=2"
    assert pages[2]["previous"] == f"http://testserver{base(prefix, tenant)}/releases/?limit=2&offset=2"
    assert pages[2]["next"] is None


def test_pagination_keeps_other_query_parameters(client: TestClient, tenant: Tenant):
    make_releases(client, tenant, 3)
    page = client.get(
        f"{base('/api/projects', tenant)}/releases?search=x&limit=1&offset=1", headers=tenant.headers()
    ).json()
    assert page["next"] == f"http://testserver{base('/api/projects', tenant)}/releases?search=x&limit=1&offset=2"
    assert page["previous"] == f"http://testserver{base('/api/projects', tenant)}/releases?search=x&limit=1"


@pytest.mark.parametrize(
    ("query", "attr", "detail"),
    [
        ("limit=abc", "limit", "A valid integer is required."),
        ("limit=0", "limit", "Ensure this value is greater than or equal to 1."),
        ("offset=-1", "offset", "Ensure this value is greater than or equal to 0."),
    ],
)
def test_bad_pagination_parameters(client: TestClient, tenant: Tenant, query: str, attr: str, detail: str):
    response = client.get(f"{base('/api/projects', tenant)}/releases?{query}", headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": response.json()["code"],
        "detail": detail,
        "attr": attr,
    }


def test_page_size_is_clamped(settings: Settings, database: Database, tenant: Tenant):
    app = create_app(settings.model_copy(update={"api_page_max_limit": 2}), database)
    client = TestClient(app)
    make_releases(client, tenant, 3)
    page = client.get(f"{base('/api/projects', tenant)}/releases?limit=500", headers=tenant.headers()).json()
    assert len(page["results"]) == 2
    assert "limit=2" in page["next"]


def test_public_url_is_used_for_links(settings: Settings, database: Database, tenant: Tenant):
    app = create_app(settings.model_copy(update={"public_url": "https://errors.example.com"}), database)
    client = TestClient(app)
    make_releases(client, tenant, 2)
    page = client.get(f"{base('/api/projects', tenant)}/releases?limit=1", headers=tenant.headers()).json()
    assert page["next"].startswith("https://errors.example.com/api/projects/")


def test_form_bodies_are_read_like_json(client: TestClient, tenant: Tenant):
    response = client.post(
        f"{base('/api/projects', tenant)}/releases", data={"version": "2.0", "project": "web"}, headers=tenant.headers()
    )
    assert response.status_code == 201
    assert response.json()["version"] == "2.0"


def test_form_values_that_look_like_json_are_decoded(client: TestClient, tenant: Tenant):
    response = client.post(
        f"{base('/api/projects', tenant)}/releases",
        data={"version": "2.0", "project": "web", "metadata": '{"git": {"commit_id": "abc"}}'},
        headers=tenant.headers(),
    )
    assert response.status_code == 201
    assert response.json()["metadata"] == {"git": {"commit_id": "abc"}}


def test_doc_style_curl_with_json_content_type_and_form_body(client: TestClient, tenant: Tenant):
    # PostHog's API reference shows: curl -H 'Content-Type: application/json' ... -d library=undefined
    response = client.post(
        f"{base('/api/environments', tenant)}/autocapture_controls/",
        content=b"library=undefined",
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.json()["library"] == "web"


@pytest.mark.parametrize("body", [b"{", b'{"version": ', b"[1, 2", b"not json at all {"])
def test_malformed_json_is_a_parse_error(client: TestClient, tenant: Tenant, body: bytes):
    response = client.post(
        f"{base('/api/projects', tenant)}/releases",
        content=body,
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "invalid_request"
    assert payload["code"] == "parse_error"
    assert payload["detail"].startswith("JSON parse error - ")
    assert payload["attr"] is None


def test_a_json_body_that_is_not_an_object(client: TestClient, tenant: Tenant):
    response = client.post(f"{base('/api/projects', tenant)}/grouping_rules", json=[1, 2], headers=tenant.headers())
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"


def test_empty_body_reports_the_missing_fields(client: TestClient, tenant: Tenant):
    response = client.post(f"{base('/api/projects', tenant)}/grouping_rules", headers=tenant.headers())
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "required",
        "detail": "This field is required.",
        "attr": "filters",
    }


def test_unsupported_media_type(client: TestClient, tenant: Tenant):
    response = client.post(
        f"{base('/api/projects', tenant)}/releases",
        content=b"version=1",
        headers={**tenant.headers(), "Content-Type": "text/csv"},
    )
    assert response.status_code == 415
    assert response.json() == {
        "type": "invalid_request",
        "code": "unsupported_media_type",
        "detail": 'Unsupported media type "text/csv" in request.',
        "attr": None,
    }


def test_oversized_bodies_are_refused_before_reading(client: TestClient, tenant: Tenant, settings: Settings):
    limit = int(settings.api_body_max_size)
    big = b'{"version": "' + b"x" * limit + b'", "project": "web"}'
    response = client.post(
        f"{base('/api/projects', tenant)}/releases",
        content=big,
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit is enforced while streaming
        yield b'{"version": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    streamed = client.post(
        f"{base('/api/projects', tenant)}/releases",
        content=chunks(),
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_wrong_method_is_405_in_posthogs_shape(client: TestClient, tenant: Tenant):
    response = client.put(f"{base('/api/projects', tenant)}/releases", json={}, headers=tenant.headers())
    assert response.status_code == 405
    assert response.json() == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "detail": 'Method "PUT" not allowed.',
        "attr": None,
    }


def test_unknown_paths_are_404_in_posthogs_shape(client: TestClient, tenant: Tenant):
    response = client.get(f"{base('/api/projects', tenant)}/no_such_thing", headers=tenant.headers())
    assert response.status_code == 404
    assert response.json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def test_unexpected_errors_are_500_in_posthogs_shape_and_logged(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
):
    app: FastAPI = create_app(settings, database)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "type": "server_error",
        "code": "error",
        "detail": "A server error occurred.",
        "attr": None,
    }
    assert any(record.message == "unhandled error" and record.exc_info for record in caplog.records)


def test_datetimes_are_utc_with_z(client: TestClient, tenant: Tenant):
    [release_id] = make_releases(client, tenant, 1)
    body = client.get(f"{base('/api/projects', tenant)}/releases/{release_id}", headers=tenant.headers()).json()
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize("depth", [25, 300, 2000])
def test_deeply_nested_bodies_are_refused_not_crashed(client: TestClient, tenant: Tenant, depth: int):
    filters: dict[str, object] = {"type": "AND", "values": [{"key": "$exception_types", "value": "x"}]}
    for _ in range(depth):
        filters = {"type": "AND", "values": [filters]}
    import orjson

    body = orjson.dumps({"filters": filters}) if depth < 250 else _nested_json(depth)
    for kind in ("grouping_rules", "assignment_rules", "suppression_rules"):
        response = client.post(
            f"{base('/api/projects', tenant)}/{kind}",
            content=body,
            headers={**tenant.headers(), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text


def _nested_json(depth: int) -> bytes:
    leaf = b'{"type": "AND", "values": [{"key": "a", "value": "x"}]}'
    return b'{"filters": ' + b'{"type": "AND", "values": [' * depth + leaf + b"]}" * depth + b"}"


def test_offsets_beyond_the_database_range_are_refused(client: TestClient, tenant: Tenant):
    for resource in ("releases", "autocapture_controls", "fingerprints", "grouping_rules"):
        response = client.get(f"{base('/api/projects', tenant)}/{resource}?offset={2**70}", headers=tenant.headers())
        assert response.status_code == 400
        assert response.json()["attr"] == "offset"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"version": "1.0\u0000", "project": "shop"}, "version"),
        (
            {"version": "1.0", "project": "shop", "metadata": {"git": {"commit_id": "a\u0000"}}},
            "metadata__git__commit_id",
        ),
        ({"version": "1.0", "project": "shop", "metadata": {"k\u0000": 1}}, "metadata__k\u0000"),
        ({"version": "1.0", "project": "shop", "metadata": ["ok", "b\u0000"]}, "metadata__1"),
    ],
)
def test_null_characters_are_refused_anywhere_in_a_body(client: TestClient, tenant: Tenant, body: Any, attr: str):
    # DRF refuses NUL in text, and PostgreSQL can store it neither in text nor in jsonb.
    response = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/releases", json=body, headers=tenant.headers()
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "null_characters_not_allowed",
        "detail": "Null characters are not allowed.",
        "attr": attr,
    }


def test_a_null_character_searched_for_finds_nothing(client: TestClient, tenant: Tenant):
    response = client.get(
        f"/api/projects/{tenant.project_id}/error_tracking/symbol_sets?ref=a%00b&search=%00", headers=tenant.headers()
    )
    assert (response.status_code, response.json()["results"]) == (200, [])


NUL_FILTERS = {
    "type": "AND",
    "values": [{"key": "$exception_types", "type": "event", "operator": "exact", "value": ["a\x00"]}],
}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("suppression_rules", {"filters": NUL_FILTERS}),
        ("grouping_rules", {"filters": NUL_FILTERS}),
        ("autocapture_controls", {"library": "web", "event_triggers": ["signup\x00"]}),
        ("symbol_sets/bulk_start_upload", {"symbol_sets": [{"chunk_id": "c\x00"}]}),
    ],
)
def test_null_characters_in_stored_json_are_a_400_not_a_500(client: TestClient, tenant: Tenant, kind: str, body: Any):
    response = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/{kind}", json=body, headers=tenant.headers()
    )
    assert response.status_code == 400
    assert response.json()["code"] == "null_characters_not_allowed"


@pytest.mark.parametrize("resource", ["issues", "symbol_sets", "stack_frames", "suppression_rules", "releases"])
def test_a_newline_for_an_id_names_nothing(client: TestClient, tenant: Tenant, prefix: str, resource: str):
    # Route patterns end in `$`, which also matches before a final newline.
    response = client.get(f"{prefix}/{tenant.project_id}/error_tracking/{resource}/%0A", headers=tenant.headers())
    assert response.status_code == 404
    assert response.json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
