"""The demo project ``make run`` bootstraps the first time it runs, and the credentials it
prints each time (``trapline demo``); ``trapline bootstrap`` makes any first project."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select

from trapline.accounts.api_keys import hash_key
from trapline.accounts.bootstrap import bootstrap
from trapline.accounts.models import PersonalApiKey
from trapline.db.engine import Database
from trapline.projects.models import Project
from trapline.sentry.auth import dsn
from trapline.settings import Settings

__all__ = ["DEMO_EMAIL", "DEMO_FILE", "bootstrap_credentials", "demo_credentials", "demo_text"]

DEMO_FILE = "demo-credentials.json"
DEMO_EMAIL = "demo@trapline.local"


def bootstrap_credentials(
    db: Database, settings: Settings, *, email: str, password: str, organization: str, project: str
) -> dict[str, Any]:
    """A first organization, user and project, and the credentials to use them."""
    with db.session(write=True) as session:
        result = bootstrap(
            session,
            email=email,
            password=password,
            organization=organization,
            project=project,
            key_label="bootstrap",
        )
    return {
        "host": settings.public_url,
        "project_id": result.project_id,
        "project_api_token": result.project_api_token,
        "personal_api_key": result.personal_api_key,
        "sentry_dsn": dsn(settings.public_url, result.sentry_public_key, result.project_id),
    }


def demo_credentials(db: Database, settings: Settings) -> dict[str, Any]:
    """Bootstrap a demo project the first time; afterwards the same credentials.

    Keys are stored hashed, so the demo's credentials are kept in the data dir (mode 600) to
    be shown again on the next `make run`.
    """
    path = Path(settings.data_dir) / DEMO_FILE
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if _still_valid(db, stored):
        credentials = stored
    else:
        # A stale file (its key was deleted) still holds the demo user's password.
        password = stored.get("password") or secrets.token_urlsafe(12)
        credentials = bootstrap_credentials(
            db, settings, email=DEMO_EMAIL, password=password, organization="Demo", project="Demo"
        )
        credentials.update(email=DEMO_EMAIL, password=password)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(credentials, handle, indent=2)
    credentials["host"] = settings.public_url
    credentials["sentry_dsn"] = _sentry_dsn(db, settings, int(credentials["project_id"]))  # may have been rotated
    return credentials


def _still_valid(db: Database, stored: dict[str, Any]) -> bool:
    """Whether the stored demo credentials' key still works."""
    if not stored.get("personal_api_key"):
        return False
    with db.session(write=False) as session:
        found = session.scalar(
            select(PersonalApiKey.id).where(PersonalApiKey.secure_value == hash_key(stored["personal_api_key"]))
        )
    return found is not None


def _sentry_dsn(db: Database, settings: Settings, project_id: int) -> str | None:
    with db.session(write=False) as session:
        key = session.scalar(select(Project.sentry_public_key).where(Project.id == project_id))
    return dsn(settings.public_url, key, project_id) if key else None


def demo_text(demo: dict[str, Any]) -> str:
    host, token, key, pid = (
        demo["host"],
        demo["project_api_token"],
        demo["personal_api_key"],
        demo["project_id"],
    )
    sentry_dsn = demo.get("sentry_dsn") or "(run trapline project --project ID to see it)"
    return f"""
Trapline is starting at {host}

  Web UI:                              {host}/login  (sign in as the user below)
  Project "Demo" (id {pid})
  Project API token, for SDKs:         {token}
  Personal API key, for the REST API:  {key}
  User:                                {demo["email"]} / {demo["password"]}

Send an exception with the PostHog Python SDK:
  pip install posthog
  python -c "from posthog import Posthog; ph = Posthog('{token}', host='{host}'); \\
ph.capture_exception(ValueError('hello from Trapline')); ph.flush()"

Point posthog-js at it (the server turns exception autocapture on):
  posthog.init('{token}', {{ api_host: '{host}' }})
  and add import 'posthog-js/dist/exception-autocapture', or set TRAPLINE_POSTHOG_JS_DIST
  so that browsers can load it from {host}/static/

Or keep Sentry's SDKs and change their DSN:
  sentry_sdk.init(dsn="{sentry_dsn}")

Call the API (OpenAPI docs at {host}/api/schema/swagger-ui/):
  curl -H "Authorization: Bearer {key}" {host}/api/projects/{pid}/error_tracking/suppression_rules/
"""
