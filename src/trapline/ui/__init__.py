"""The web UI: server-rendered pages for triaging issues, in the same process as the API.

Pages are Jinja2 templates (``templates/``) over the same services the REST API uses; the
little JavaScript there is (``static/ui.js``) only adds conveniences, so every page reads
without it. ``install`` adds the routers and the static files to the app.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from trapline.ui import (
    account,
    alerts_page,
    auth,
    autocapture_page,
    inbox,
    issue_page,
    members_page,
    releases_page,
    rules_pages,
    sdk_page,
    symbols_page,
    usage_page,
)
from trapline.ui.errors import error_page
from trapline.ui.render import STATIC_DIR
from trapline.ui.throttle import LoginThrottle

__all__ = ["PAGES", "error_page", "install"]


# Every page module; each owns one router.
PAGES = (
    auth, account, inbox, issue_page, rules_pages, alerts_page, autocapture_page, symbols_page, releases_page, sdk_page,
    usage_page, members_page,
)  # fmt: skip


def install(app: FastAPI) -> None:
    for module in PAGES:
        app.include_router(module.router)
    app.state.login_throttle = LoginThrottle(app.state.db)
    app.mount("/assets", StaticFiles(directory=STATIC_DIR), name="ui-assets")
