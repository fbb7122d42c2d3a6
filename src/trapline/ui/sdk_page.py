"""``/project/{id}/settings/sdk``: copy-paste setup for the SDKs and the CLI, filled in."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from trapline.api.deps import SettingsDep
from trapline.sentry.auth import dsn
from trapline.ui.deps import UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.render import render

__all__ = ["Snippet", "router", "sdk_snippets"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@dataclass(frozen=True)
class Snippet:
    title: str
    language: str
    code: str
    note: str = ""
    install: str = ""


def sdk_snippets(*, host: str, token: str, sentry_dsn: str, project_id: int, js_served: bool) -> list[Snippet]:
    """The setup snippets with this project's values in them."""
    served = (
        "Trapline serves posthog-js's scripts (TRAPLINE_POSTHOG_JS_DIST is set)."
        if js_served
        else "Needs TRAPLINE_POSTHOG_JS_DIST on the server (a posthog-js installation), which is not set: "
        "until it is, /static/array.js answers 404."
    )
    return [
        Snippet(
            "posthog-js (npm)",
            "js",
            'import posthog from "posthog-js"\n'
            "// Bundles exception capture, so nothing is loaded from /static/:\n"
            'import "posthog-js/dist/exception-autocapture"\n\n'
            f'posthog.init("{token}", {{ api_host: "{host}" }})\n'
            "// Manual captures work whether or not autocapture is on:\n"
            'posthog.captureException(new Error("hello from Trapline"))',
            "Unhandled errors and rejections are captured when exception autocapture is on for the project: "
            "posthog-js reads it from the remote config (see Autocapture), so the page needs no option for it.",
            install="npm install posthog-js",
        ),
        Snippet(
            "posthog-js (script tag)",
            "html",
            f'<script src="{host}/static/array.js"></script>\n'
            f'<script>posthog.init("{token}", {{ api_host: "{host}" }})</script>',
            served,
        ),
        Snippet(
            "posthog-python",
            "python",
            "from posthog import Posthog\n\n"
            f'posthog = Posthog("{token}", host="{host}", enable_exception_autocapture=True)\n'
            'posthog.capture_exception(ValueError("hello from Trapline"))',
            "enable_exception_autocapture captures uncaught exceptions, in the main thread and in others.",
            install="pip install posthog",
        ),
        Snippet(
            "posthog-node",
            "js",
            'import { PostHog } from "posthog-node"\n\n'
            f'const posthog = new PostHog("{token}", {{\n'
            f'  host: "{host}",\n'
            "  enableExceptionAutocapture: true,\n"
            "})\n"
            'posthog.captureException(new Error("hello from Trapline"))\n'
            "await posthog.shutdown()",
            install="npm install posthog-node",
        ),
        Snippet(
            "sentry-sdk (Python)",
            "python",
            f'import sentry_sdk\n\nsentry_sdk.init(dsn="{sentry_dsn}")',
            "Sentry's SDKs report into the same issues: only the DSN changes.",
            install="pip install sentry-sdk",
        ),
        Snippet(
            "@sentry/browser",
            "js",
            f'import * as Sentry from "@sentry/browser"\n\nSentry.init({{ dsn: "{sentry_dsn}" }})',
            install="npm install @sentry/browser",
        ),
        Snippet(
            "Source maps (trapline sourcemap)",
            "sh",
            f"export POSTHOG_CLI_HOST={host}\n"
            f"export POSTHOG_CLI_ENV_ID={project_id}\n"
            "export POSTHOG_CLI_TOKEN=phx_…   # a personal API key with error_tracking:write\n"
            "trapline sourcemap process --directory dist   # inject chunk ids, then upload",
            "Run it on the build output before deploying. PostHog's own posthog-cli reads the same variables "
            "(and the newer POSTHOG_CLI_API_KEY and POSTHOG_CLI_PROJECT_ID).",
        ),
    ]


@router.get("/project/{project_id}/settings/sdk", name="ui_sdk")
def sdk(request: Request, project: UiProject, settings: SettingsDep) -> Response:
    sentry_dsn = dsn(settings.public_url, project.sentry_public_key, project.id)
    return render(
        request,
        "settings_sdk.html",
        {
            "section": "sdk",
            "host": settings.base_url,
            "sentry_dsn": sentry_dsn,
            "snippets": sdk_snippets(
                host=settings.base_url,
                token=project.api_token,
                sentry_dsn=sentry_dsn,
                project_id=project.id,
                js_served=settings.posthog_js_dist is not None,
            ),
        },
    )
