"""What browsers fetch besides capture: remote config, flags, the extension scripts, CORS."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.capture import replay
from tests.factories import Tenant
from trapline.db.engine import Database
from trapline.sdk.routes import ConfigCache

ORIGIN = "https://shop.example.com"


@pytest.fixture
def fresh(app: FastAPI, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config read on every request, so a test sees its own changes at once (the server's
    cache keeps each answer for a few seconds)."""
    monkeypatch.setitem(app.state._state, "sdk_config", ConfigCache(database, ttl=0))


def config_of(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get(f"/array/{token}/config")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def suppression_rule(client: TestClient, tenant: Tenant, filters: dict[str, Any], **fields: Any) -> None:
    response = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/suppression_rules",
        json={"filters": filters, **fields},
        headers=tenant.headers(),
    )
    assert response.status_code == 201, response.text


def group(kind: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "values": list(values)}


def prop(key: str, operator: str, value: Any) -> dict[str, Any]:
    return {"type": "event", "key": key, "operator": operator, "value": value}


def test_config_tells_posthog_js_to_capture_exceptions_and_where_to(client: TestClient, tenant: Tenant):
    config = config_of(client, tenant.project_token)
    assert config["token"] == tenant.project_token
    assert config["autocaptureExceptions"] is True
    assert config["errorTracking"] == {
        "autocaptureExceptions": True,
        "suppressionRules": [],
        "captureExtensionExceptions": False,
    }
    assert config["supportedCompression"] == ["gzip", "gzip-js"]
    assert config["hasFeatureFlags"] is False
    assert config["analytics"] == {"endpoint": "/i/v0/e/"}
    assert config["sessionRecording"] is False


def test_config_js_registers_the_same_config_for_the_token(client: TestClient, tenant: Tenant):
    response = client.get(f"/array/{tenant.project_token}/config.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age" in response.headers["cache-control"]
    script = response.text
    assert "window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};" in script
    match = re.search(r"window\._POSTHOG_REMOTE_CONFIG\[(.+?)\] = (\{.*\});", script)
    assert match is not None
    assert json.loads(match.group(1)) == tenant.project_token
    registered = json.loads(match.group(2))
    assert registered == {"config": config_of(client, tenant.project_token), "siteApps": []}


@pytest.mark.parametrize("path", ["/array/{}/config", "/array/{}/config.js"])
@pytest.mark.parametrize("token", ["phc_nobody", "phc_%00"])  # PostgreSQL refuses NUL in a query
def test_an_unknown_token_is_404_in_posthogs_shape(client: TestClient, path: str, token: str):
    response = client.get(path.format(token), headers={"Origin": ORIGIN})
    assert response.status_code == 404
    assert response.json()["type"] == "invalid_request"
    assert response.json()["code"] == "not_found"
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_autocapture_turned_off_for_the_project_reaches_the_config(client: TestClient, tenant: Tenant, fresh: None):
    response = client.patch(
        f"/api/environments/{tenant.project_id}/",
        json={"autocapture_exceptions_opt_in": False},
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["autocapture_exceptions_opt_in"] is False
    config = config_of(client, tenant.project_token)
    assert config["autocaptureExceptions"] is False
    assert config["errorTracking"]["autocaptureExceptions"] is False


def test_only_client_safe_suppression_rules_go_to_the_browser(client: TestClient, tenant: Tenant, fresh: None):
    safe = group("OR", prop("$exception_types", "exact", ["ChunkLoadError"]))
    suppression_rule(client, tenant, safe)
    # The rule editor's nesting: one group in a group means the same.
    nested = group("AND", group("AND", prop("$exception_values", "icontains", "ResizeObserver")))
    suppression_rule(client, tenant, nested)
    # Each of these only the server can apply:
    suppression_rule(client, tenant, group("OR", prop("$exception_types", "exact", "X")), sampling_rate=0.5)
    suppression_rule(client, tenant, group("OR", prop("$current_url", "icontains", "/admin")))
    suppression_rule(client, tenant, group("OR", prop("$exception_values", "regex", "^Script error")))
    suppression_rule(
        client,
        tenant,
        group("AND", prop("$exception_types", "exact", "A"), group("OR", prop("$exception_values", "exact", "B"))),
    )

    rules = config_of(client, tenant.project_token)["errorTracking"]["suppressionRules"]

    assert rules == [safe, nested["values"][0]]


def test_a_disabled_rule_is_not_sent(client: TestClient, tenant: Tenant, fresh: None, database: Database):
    from trapline.rules.models import SuppressionRule

    suppression_rule(client, tenant, group("OR", prop("$exception_types", "exact", "Gone")))
    with database.session(write=True) as session:
        for rule in session.query(SuppressionRule).filter_by(project_id=tenant.project_id):
            rule.disabled_data = {"message": "broken"}
        session.commit()
    assert config_of(client, tenant.project_token)["errorTracking"]["suppressionRules"] == []


def test_autocapture_controls_ride_along_in_posthogs_camel_case(client: TestClient, tenant: Tenant, fresh: None):
    response = client.post(
        f"/api/projects/{tenant.project_id}/error_tracking/autocapture_controls",
        json={
            "match_type": "any",
            "sample_rate": "0.25",
            "linked_feature_flag": {"id": 7, "key": "errors", "variant": "on"},
            "event_triggers": ["checkout"],
            "url_triggers": [{"url": "/checkout", "matching": "regex"}],
            "url_blocklist": [{"url": "/admin", "matching": "regex"}],
        },
        headers=tenant.headers(),
    )
    assert response.status_code == 201, response.text
    controls = config_of(client, tenant.project_token)["errorTracking"]["autoCaptureControls"]
    assert controls == {
        "web": {
            "urlTriggers": [{"url": "/checkout", "matching": "regex"}],
            "urlBlocklist": [{"url": "/admin", "matching": "regex"}],
            "eventTriggers": ["checkout"],
            "linkedFeatureFlag": {"key": "errors", "variant": "on"},
            "sampleRate": 0.25,
            "matchType": "any",
        }
    }


def test_posthog_js_flags_request_gets_an_empty_answer(client: TestClient, tenant: Tenant):
    response = replay(client, "posthog-js-1.449.2_flags_v2_request_gzip.json", tenant.project_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["flags"] == {} and body["featureFlags"] == {} and body["featureFlagPayloads"] == {}
    assert body["errorsWhileComputingFlags"] is False
    assert body["quotaLimited"] == []
    assert "autocaptureExceptions" not in body  # only with config=true


def test_posthog_python_flags_request_gets_an_empty_answer(client: TestClient, tenant: Tenant):
    response = replay(client, "posthog-python-7.91.1_flags_v4_request.json", tenant.project_token)
    assert response.status_code == 200, response.text
    assert response.json()["flags"] == {}


@pytest.mark.parametrize("path", ["/flags/?v=2&config=true", "/flags?v=2&config=true", "/decide/?v=3", "/decide"])
def test_flags_with_config_and_decide_carry_the_config(client: TestClient, tenant: Tenant, path: str):
    body = gzip.compress(json.dumps({"token": tenant.project_token, "distinct_id": "u1"}).encode())
    response = client.post(path, content=body, headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["featureFlags"] == {}
    assert answer["autocaptureExceptions"] is True
    assert answer["errorTracking"]["autocaptureExceptions"] is True


def test_flags_with_a_form_encoded_body(client: TestClient, tenant: Tenant):
    import base64

    data = base64.b64encode(json.dumps({"token": tenant.project_token, "distinct_id": "u1"}).encode()).decode()
    response = client.post("/flags/?v=2", data={"data": data})
    assert response.status_code == 200, response.text
    assert response.json()["flags"] == {}


def test_flags_refuses_unknown_or_missing_tokens_and_bad_bodies(client: TestClient):
    for token in ("phc_nobody", "phc_\x00"):
        unknown = client.post("/flags/?v=2", json={"token": token, "distinct_id": "u1"})
        assert unknown.status_code == 401
        assert unknown.json()["code"] == "invalid_api_key"
    missing = client.post("/flags/?v=2", json={"distinct_id": "u1"})
    assert missing.status_code == 401
    assert "token" in missing.json()["detail"]
    broken = client.post("/flags/?v=2", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["type"] == "validation_error"
    huge = client.post("/flags/?v=2", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert huge.status_code == 413


def test_every_sdk_endpoint_answers_other_origins(client: TestClient, tenant: Tenant):
    headers = {"Origin": ORIGIN}
    answers = [
        client.get(f"/array/{tenant.project_token}/config", headers=headers),
        client.get(f"/array/{tenant.project_token}/config.js", headers=headers),
        client.post("/flags/?v=2", json={"token": tenant.project_token, "distinct_id": "u"}, headers=headers),
        client.post("/e/", json={"token": tenant.project_token, "event": "x", "distinct_id": "u"}, headers=headers),
        client.get("/static/exception-autocapture.js", headers=headers),
    ]
    for response in answers:
        assert response.headers["access-control-allow-origin"] == ORIGIN, response.request.url
        assert response.headers["access-control-allow-credentials"] == "true"
    anonymous = client.get(f"/array/{tenant.project_token}/config")
    assert anonymous.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/flags/?v=2", "/decide/", "/e/", "/i/v0/e/"])
def test_preflight_allows_what_posthog_js_sends(client: TestClient, path: str):
    response = client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


@pytest.fixture
def posthog_js(tmp_path: Path, app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A posthog-js dist folder installed with the server."""
    dist = tmp_path / "posthog-js" / "dist"
    dist.mkdir(parents=True)
    (dist / "exception-autocapture.js").write_text("/* exception autocapture */")
    (dist / "array.js").write_text("/* the loader */")
    (tmp_path / "secret.js").write_text("/* outside dist */")
    monkeypatch.setitem(app.state._state, "settings", app.state.settings.model_copy(update={"posthog_js_dist": dist}))
    return dist


def test_extension_scripts_are_served_from_the_installed_posthog_js(client: TestClient, posthog_js: Path):
    plain = client.get("/static/exception-autocapture.js")
    assert plain.status_code == 200
    assert plain.text == "/* exception autocapture */"
    assert plain.headers["content-type"].startswith("application/javascript")
    assert "immutable" not in plain.headers["cache-control"]
    versioned = client.get("/static/1.449.2/exception-autocapture.js")
    assert versioned.status_code == 200
    assert versioned.text == plain.text
    assert "immutable" in versioned.headers["cache-control"]


@pytest.mark.parametrize(
    "path", ["/static/missing.js", "/static/..%2Fsecret.js", "/static/../secret.js", "/static/array.css", "/static/.js"]
)
def test_only_scripts_of_the_installed_posthog_js_are_served(client: TestClient, posthog_js: Path, path: str):
    response = client.get(path)
    assert response.status_code == 404
    assert "outside dist" not in response.text


def test_without_an_installed_posthog_js_the_extension_is_404_with_the_setting_named(client: TestClient):
    response = client.get("/static/exception-autocapture.js")
    assert response.status_code == 404
    assert "TRAPLINE_POSTHOG_JS_DIST" in response.json()["detail"]
