"""The trapline command: migrate, bootstrap and demo, run in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.ui.conftest import sign_in
from trapline.cli import main
from trapline.db import migrate
from trapline.db.engine import Database


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, database_url: str, database: Database) -> Path:
    """The CLI pointed at the test database (SQLite or PostgreSQL) and a fresh data dir."""
    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TRAPLINE_DATABASE_URL", database_url)
    return data_dir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def bootstrap(
    capsys: pytest.CaptureFixture[str], password: str = "correct horse"
) -> tuple[int, dict[str, object], str]:
    code, out, err = run(
        capsys,
        "bootstrap",
        "--email", "Ada@Example.com", "--password", password,
        "--organization", "Acme", "--project", "Web", "--json",
    )  # fmt: skip
    return code, (json.loads(out) if code == 0 else {}), err


def test_migrate(cli_env: Path, capsys: pytest.CaptureFixture[str], database: Database):
    code, _, _ = run(capsys, "migrate")
    assert code == 0
    assert migrate.is_up_to_date(database.engine)


def test_bootstrap_prints_what_an_sdk_and_a_script_need(
    cli_env: Path, capsys: pytest.CaptureFixture[str], client: TestClient
):
    code, result, _ = bootstrap(capsys)
    assert code == 0
    assert set(result) == {"host", "project_id", "project_api_token", "personal_api_key", "sentry_dsn"}
    assert result["host"] == "http://127.0.0.1:8000"
    assert re.fullmatch(rf"http://[0-9a-f]{{32}}@127\.0\.0\.1:8000/{result['project_id']}", str(result["sentry_dsn"]))
    assert str(result["project_api_token"]).startswith("phc_")
    assert str(result["personal_api_key"]).startswith("phx_")
    response = client.get(
        f"/api/projects/{result['project_id']}/error_tracking/releases",
        headers={"Authorization": f"Bearer {result['personal_api_key']}"},
    )
    assert response.status_code == 200


def test_bootstrap_twice_is_safe(cli_env: Path, capsys: pytest.CaptureFixture[str], client: TestClient):
    _, first, _ = bootstrap(capsys)
    code, second, _ = bootstrap(capsys)
    assert code == 0
    assert second["project_id"] == first["project_id"]
    assert second["project_api_token"] == first["project_api_token"]
    assert second["personal_api_key"] != first["personal_api_key"]
    for key in (first["personal_api_key"], second["personal_api_key"]):
        response = client.get(
            f"/api/projects/{first['project_id']}/error_tracking/releases", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200


def test_bootstrap_refuses_a_wrong_password_for_an_existing_user(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    bootstrap(capsys)
    code, _, err = bootstrap(capsys, password="something else")
    assert code == 2
    assert "password does not match" in err


def test_bootstrap_plain_output(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(
        capsys,
        "bootstrap",
        "--email",
        "x@example.com",
        "--password",
        "password1",
        "--organization",
        "O",
        "--project",
        "P",
    )
    assert code == 0
    assert "project_api_token: phc_" in out
    assert "personal_api_key: phx_" in out


def test_bootstrap_validates_its_input(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(
        capsys, "bootstrap", "--email", "nobody", "--password", "password1", "--organization", "O", "--project", "P"
    )
    assert code == 2
    assert "valid email" in err
    code, _, err = run(
        capsys, "bootstrap", "--email", "a@b.c", "--password", "short", "--organization", "O", "--project", "P"
    )
    assert code == 2
    assert "at least 8 characters" in err


def test_project_turns_exception_autocapture_off_and_on(
    cli_env: Path, capsys: pytest.CaptureFixture[str], client: TestClient
):
    _, made, _ = bootstrap(capsys)
    project_id, token = str(made["project_id"]), made["project_api_token"]
    code, out, _ = run(capsys, "project", "--project", project_id, "--json")
    assert code == 0
    assert json.loads(out) == {
        "project_id": made["project_id"],
        "name": "Web",
        "project_api_token": token,
        "sentry_dsn": made["sentry_dsn"],
        "autocapture_exceptions": "on",
    }
    code, out, _ = run(capsys, "project", "--project", project_id, "--autocapture-exceptions", "off")
    assert code == 0
    assert "autocapture_exceptions: off" in out
    assert client.get(f"/array/{token}/config").json()["autocaptureExceptions"] is False
    code, out, _ = run(capsys, "project", "--project", project_id, "--autocapture-exceptions", "on", "--json")
    assert json.loads(out)["autocapture_exceptions"] == "on"


def test_project_rotates_the_sentry_key(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    _, made, _ = bootstrap(capsys)
    code, out, _ = run(capsys, "project", "--project", str(made["project_id"]), "--rotate-sentry-key", "--json")
    assert code == 0
    rotated = json.loads(out)["sentry_dsn"]
    assert rotated != made["sentry_dsn"]
    assert rotated.endswith(f"@127.0.0.1:8000/{made['project_id']}")
    _, again, _ = bootstrap(capsys)  # bootstrap shows the current DSN
    assert again["sentry_dsn"] == rotated


def test_project_names_a_missing_project(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "project", "--project", "424242")
    assert code == 2
    assert "there is no project 424242" in err


def test_demo_creates_credentials_once(cli_env: Path, capsys: pytest.CaptureFixture[str], client: TestClient):
    code, first, _ = run(capsys, "demo")
    assert code == 0
    stored = json.loads((cli_env / "demo-credentials.json").read_text())
    assert (cli_env / "demo-credentials.json").stat().st_mode & 0o077 == 0
    assert stored["personal_api_key"] in first
    assert stored["project_api_token"] in first
    assert "posthog.init(" in first and "capture_exception" in first
    assert f'/{stored["project_id"]}")' in first and "sentry_sdk.init(dsn=" in first

    code, second, _ = run(capsys, "demo")
    assert code == 0
    assert stored["personal_api_key"] in second
    assert json.loads((cli_env / "demo-credentials.json").read_text()) == stored

    response = client.get(
        f"/api/projects/{stored['project_id']}/error_tracking/releases",
        headers={"Authorization": f"Bearer {stored['personal_api_key']}"},
    )
    assert response.status_code == 200


def test_demo_replaces_credentials_whose_key_is_gone(
    cli_env: Path, capsys: pytest.CaptureFixture[str], database: Database
):
    run(capsys, "demo")
    old = json.loads((cli_env / "demo-credentials.json").read_text())
    with database.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM personal_api_key")
    run(capsys, "demo")
    new = json.loads((cli_env / "demo-credentials.json").read_text())
    assert new["personal_api_key"] != old["personal_api_key"]


def test_unsafe_settings_stop_the_command_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
):
    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TRAPLINE_SECRET_KEY", "changeme")
    code, _, err = run(capsys, "migrate")
    assert code == 2
    assert err.startswith("trapline: TRAPLINE_SECRET_KEY is too weak")


def test_password_lets_a_forgetful_user_back_in(cli_env: Path, capsys: pytest.CaptureFixture[str], client: TestClient):
    assert bootstrap(capsys)[0] == 0
    sign_in(client, "ada@example.com", "correct horse")
    code, out, _ = run(capsys, "password", "--email", "ADA@example.com")
    assert code == 0
    new = out.strip().rsplit(": ", 1)[1]
    assert len(new) >= 12
    # Signed out everywhere, and only the new password works.
    assert client.get("/account", follow_redirects=False).status_code == 303
    sign_in(client, "ada@example.com", new)
    assert run(capsys, "password", "--email", "ada@example.com", "--password", "chosen-one")[0] == 0
    sign_in(client, "ada@example.com", "chosen-one")


def test_password_refuses_unknown_users_and_short_passwords(cli_env: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "password", "--email", "nobody@example.com")
    assert (code, err.strip()) == (2, "trapline: There is no user nobody@example.com.")
    assert bootstrap(capsys)[0] == 0
    code, _, err = run(capsys, "password", "--email", "ada@example.com", "--password", "short")
    assert code == 2
    assert "at least 8 characters" in err
