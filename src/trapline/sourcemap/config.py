"""Where to upload and as whom, read like PostHog's CLI reads it: flags, then environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DEFAULT_HOST", "ApiConfig", "ConfigError", "resolve_config"]

DEFAULT_HOST = "https://us.posthog.com"
HOST_VARIABLES = ("POSTHOG_CLI_HOST",)
API_KEY_VARIABLES = ("POSTHOG_CLI_API_KEY", "POSTHOG_CLI_TOKEN")
PROJECT_VARIABLES = ("POSTHOG_CLI_PROJECT_ID", "POSTHOG_CLI_ENV_ID")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which flag or variable to set."""


@dataclass(frozen=True)
class ApiConfig:
    host: str
    api_key: str
    project_id: str
    verify_ssl: bool = True

    @property
    def project_url(self) -> str:
        return f"{self.host}/api/projects/{self.project_id}"


def resolve_config(
    *,
    host: str | None,
    api_key: str | None,
    project_id: str | None,
    env: Mapping[str, str],
    skip_ssl_verification: bool = False,
) -> ApiConfig:
    host = (host or _first(env, HOST_VARIABLES) or DEFAULT_HOST).strip().rstrip("/")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"the host {host!r} is not an http:// or https:// URL (--host or POSTHOG_CLI_HOST)")
    api_key = (api_key or _first(env, API_KEY_VARIABLES) or "").strip()
    if not api_key:
        raise ConfigError("no personal API key: pass --api-key or set POSTHOG_CLI_API_KEY")
    project_id = (project_id or _first(env, PROJECT_VARIABLES) or "").strip()
    if not project_id:
        raise ConfigError("no project id: pass --project-id or set POSTHOG_CLI_PROJECT_ID")
    if "/" in project_id or "?" in project_id or "#" in project_id:
        raise ConfigError(f"the project id {project_id!r} cannot be part of a URL path")
    return ApiConfig(host=host, api_key=api_key, project_id=project_id, verify_ssl=not skip_ssl_verification)


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None
