"""Host, key and project: flags first, then PostHog's CLI's environment variables."""

from __future__ import annotations

import re

import pytest

from trapline.sourcemap.config import ApiConfig, ConfigError, resolve_config


def test_defaults_and_environment():
    config = resolve_config(
        host=None, api_key=None, project_id=None, env={"POSTHOG_CLI_API_KEY": "phx_a", "POSTHOG_CLI_PROJECT_ID": "3"}
    )
    assert config == ApiConfig(host="https://us.posthog.com", api_key="phx_a", project_id="3")
    assert config.project_url == "https://us.posthog.com/api/projects/3"


def test_aliases_and_flags_win():
    env = {"POSTHOG_CLI_HOST": "https://eu.posthog.com/", "POSTHOG_CLI_TOKEN": "phx_env", "POSTHOG_CLI_ENV_ID": "9"}
    assert resolve_config(host=None, api_key=None, project_id=None, env=env) == ApiConfig(
        "https://eu.posthog.com", "phx_env", "9"
    )
    flags = resolve_config(
        host="http://127.0.0.1:8000", api_key="phx_flag", project_id="1", env=env, skip_ssl_verification=True
    )
    assert flags == ApiConfig("http://127.0.0.1:8000", "phx_flag", "1", verify_ssl=False)


@pytest.mark.parametrize(
    ("host", "key", "project", "message"),
    [
        (None, None, "1", "no personal API key: pass --api-key or set POSTHOG_CLI_API_KEY"),
        (None, "phx", None, "no project id: pass --project-id or set POSTHOG_CLI_PROJECT_ID"),
        ("us.posthog.com", "phx", "1", "is not an http:// or https:// URL"),
        (None, "phx", "1/../2", "cannot be part of a URL path"),
    ],
)
def test_what_is_missing_is_named(host: str | None, key: str | None, project: str | None, message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config(host=host, api_key=key, project_id=project, env={})
