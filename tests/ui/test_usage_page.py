"""The Usage page: what was stored and dropped, per day and reason; the limits and retention
form, saved as the REST API saves them; and ``trapline usage``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tests.capture import exception, exception_event, post_batch
from tests.factories import Tenant
from tests.server import run_trapline, trapline_env
from tests.ui.test_project_settings import api, post, settings_url, text_of
from trapline.db.engine import Database
from trapline.worker import Worker, WorkerOptions


def _flood(ui: TestClient, tenant: Tenant, database: Database) -> None:
    events = [exception_event(exception(kind)) for kind in ("ValueError", "KeyError") for _ in range(6)]
    assert post_batch(ui, tenant.project_token, *events).status_code == 200
    at = datetime.now(UTC)
    Worker(database, WorkerOptions(clock=lambda: at)).drain()


def test_the_page_shows_stored_and_dropped_per_reason(ui: TestClient, tenant: Tenant, database: Database):
    answer = post(ui, settings_url(tenant, "usage", "limits"), {"per_issue_rate_limit_value": "4"})
    assert answer.status_code == 303
    _flood(ui, tenant, database)
    page = ui.get(settings_url(tenant, "usage"))
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Stored 8" in text
    assert "Dropped 4" in text
    assert "rate_limited_issue : over their issue's rate limit" in text
    today = datetime.now(UTC).date().isoformat()
    assert f"{today} 8 4" in text
    assert 'value="4"' in page.text


def test_limits_are_saved_as_the_api_saves_them(ui: TestClient, tenant: Tenant):
    answer = post(
        ui,
        settings_url(tenant, "usage", "limits"),
        {
            "project_rate_limit_value": "1,000",
            "project_rate_limit_bucket_size_minutes": "5",
            "retention_days": "30",
            "max_events_per_issue": "",
        },
    )
    assert answer.status_code == 303
    saved = api(ui, tenant, "error_tracking/settings/retrieve_settings/")
    assert saved["project_rate_limit_value"] == 1000
    assert saved["project_rate_limit_bucket_size_minutes"] == 5
    assert saved["per_issue_rate_limit_value"] is None
    assert saved["retention_days"] == 30

    cleared = post(ui, settings_url(tenant, "usage", "limits"), {"project_rate_limit_value": ""})
    assert cleared.status_code == 303
    assert api(ui, tenant, "error_tracking/settings/retrieve_settings/")["project_rate_limit_value"] is None


def test_bad_values_are_refused_in_words(ui: TestClient, tenant: Tenant):
    for value, words in (("0", "greater than or equal to 1"), ("ten", "a whole number is required"),
                         ("99999999999", "less than or equal to")):  # fmt: skip
        answer = post(ui, settings_url(tenant, "usage", "limits"), {"retention_days": value})
        assert answer.status_code == 400
        assert "Keep events for (days)" in text_of(answer.text)
        assert words in text_of(answer.text)
        assert f'value="{value}"' in answer.text  # what was typed is kept
    assert api(ui, tenant, "error_tracking/settings/retrieve_settings/")["retention_days"] is None


def test_the_command_prints_the_same(tmp_path: Path):
    data_dir = tmp_path / "data"
    env = trapline_env(data_dir)
    assert run_trapline("demo", env=env).returncode == 0
    result = run_trapline("usage", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["installation"]["database"] == "sqlite"
    assert report["installation"]["database_bytes"] > 0
    [project] = report["projects"]
    assert (project["name"], project["stored"], project["events_kept"]) == ("Demo", 0, 0)
    text = run_trapline("usage", "--days", "7", env=env)
    assert "stored (7 d)" in text.stdout and "Project 1 'Demo'" in text.stdout
    assert run_trapline("usage", "--days", "0", env=env).returncode == 2
