"""The OpenAPI schema describes the real API, and a schemathesis run over it finds no
server errors and no response that breaks the schema."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.factories import Tenant

RESOURCES = (
    "autocapture_controls",
    "fingerprints",
    "grouping_rules",
    "assignment_rules",
    "suppression_rules",
    "releases",
)


@pytest.fixture
def schema_document(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_every_configuration_route_is_described_under_both_prefixes(schema_document: dict[str, Any]):
    paths = schema_document["paths"]
    for prefix in ("/api/environments/{project_id}", "/api/projects/{project_id}"):
        for resource in RESOURCES:
            assert f"{prefix}/error_tracking/{resource}" in paths
            assert f"{prefix}/error_tracking/{resource}/{{id}}" in paths
        for kind in ("grouping_rules", "assignment_rules", "suppression_rules"):
            assert "patch" in paths[f"{prefix}/error_tracking/{kind}/reorder"]
        assert "get" in paths[f"{prefix}/error_tracking/releases/hash/{{hash_id}}"]
        assert "get" in paths[f"{prefix}/error_tracking/fingerprints/resolve"]
    # the trailing-slash twins work but are not listed twice
    assert not any(path.endswith("/") for path in paths)


def test_operation_ids_follow_posthogs_naming(schema_document: dict[str, Any]):
    ids = [op["operationId"] for item in schema_document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "environments_error_tracking_grouping_rules_list" in ids
    assert "error_tracking_grouping_rules_list" in ids
    assert "environments_error_tracking_autocapture_controls_create" in ids
    assert "environments_project_partial_update" in ids
    assert all(re.fullmatch(r"(environments_)?(error_tracking|project)_[a-z_]+", op_id) for op_id in ids)


def test_request_and_response_shapes_are_described(schema_document: dict[str, Any]):
    components = schema_document["components"]["schemas"]
    assert set(components["AutocaptureControlsOut"]["properties"]) == {
        "id", "library", "match_type", "sample_rate", "linked_feature_flag",
        "event_triggers", "url_triggers", "url_blocklist",
    }  # fmt: skip
    assert components["ErrorBody"]["required"] == ["type", "code", "detail", "attr"]
    create = schema_document["paths"]["/api/projects/{project_id}/error_tracking/grouping_rules"]["post"]
    assert "201" in create["responses"]
    assert {"400", "401", "403", "404"} <= set(create["responses"])
    update = schema_document["paths"]["/api/projects/{project_id}/error_tracking/grouping_rules/{id}"]["patch"]
    assert "204" in update["responses"]


# What the schema promises: no server errors, and every response (status, content type,
# headers, body) as described. Whether the server accepts exactly the inputs the schema
# allows is not checked: like PostHog's, it is more lenient (numbers for strings, extra
# fields ignored) and its rule filters are richer than JSON Schema can say.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,
]


def project_operations(app: FastAPI) -> list[Any]:
    loaded = schemathesis.openapi.from_asgi("/api/schema/", app)
    loaded = loaded.include(path_regex=r"^/api/(environments|projects)/\{project_id\}/error_tracking/")
    return [result.ok() for result in loaded.get_all_operations()]


# The operations are split into shards, each its own test, so that pytest-xdist runs them side
# by side: as one test it took 140-170 s per backend and was what the suite's last minutes
# waited for.
_SHARDS = 4


@pytest.mark.parametrize("shard", range(_SHARDS))
def test_schemathesis_finds_no_server_errors_or_schema_violations(
    app: FastAPI, tenant: Tenant, database: Any, shard: int
):
    # Driven through hypothesis directly: schemathesis' pytest plugin does not support pytest 9 yet.
    operations = project_operations(app)
    assert len(operations) >= 2 * 30
    failures: list[str] = []
    for operation in operations[shard::_SHARDS]:

        @given(case=operation.as_strategy())
        # 12 cases per operation and backend (it was 20): at 20 this one test took over two minutes
        # per backend, the longest of the suite, with CI at 17.5-19.5 of its 20 minutes.
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.path_parameters = {**(case.path_parameters or {}), "project_id": str(tenant.project_id)}
            case.call_and_validate(headers=tenant.headers(), checks=CHECKS)

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_a_nul_in_any_path_or_query_parameter_is_never_a_server_error(
    client: TestClient, tenant: Tenant, schema_document: dict[str, Any]
):
    # PostgreSQL text cannot hold NUL: a lookup by such a value must find nothing (or refuse
    # it), never reach the database raw. Schemathesis finds these only by chance.
    asked = 0
    for template, item in schema_document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "delete"}:
                continue
            parameters = operation.get("parameters", [])
            strings = [p["name"] for p in parameters if p["in"] == "query" and _may_be_text(p.get("schema", {}))]
            path = template.replace("{project_id}", str(tenant.project_id))
            path = re.sub(r"\{[a-z_]+\}", "a%00b", path)
            for params in [{}, *({name: "a\x00b"} for name in strings)]:
                response = client.request(method, path, params=params, headers=tenant.headers())
                asked += 1
                assert response.status_code < 500, (method, path, params, response.text)
    assert asked > 40


def _may_be_text(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "string" and "enum" not in option for option in options)
