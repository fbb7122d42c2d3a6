"""Pages from templates: the Jinja2 environment, its filters, and one-shot notices.

Every page is rendered by ``render``, which adds what the layout needs (who is signed in, the
CSRF token, the projects for the switcher, a notice left by the last redirect). Templates
autoescape: nothing from an event reaches a page unescaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

__all__ = [
    "NOTICE_COOKIE",
    "STATIC_DIR",
    "compact_number",
    "redirect",
    "render",
    "sparkline_svg",
    "time_ago",
]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
NOTICE_COOKIE = "trapline_notice"


def time_ago(moment: datetime | None, now: datetime | None = None) -> str:
    """ "3 minutes ago", "in 2 days"; the exact time is the element's title."""
    if moment is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for limit, size, unit in (
        (60, 1, "second"),
        (3600, 60, "minute"),
        (86400, 3600, "hour"),
        (86400 * 30, 86400, "day"),
        (86400 * 365, 86400 * 30, "month"),
        (math.inf, 86400 * 365, "year"),
    ):
        if seconds < limit:
            amount = max(1, int(seconds // size)) if unit != "second" else int(seconds)
            if unit == "second" and amount < 10:
                return "just now"
            text = f"{amount} {unit}{'' if amount == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    raise AssertionError("unreachable")


def exact_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def compact_number(value: int | float | None) -> str:
    """1234 → "1.2k"; counts in a list are for scanning, the exact one is on the issue page."""
    if value is None:
        return "0"
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            scaled = value / size
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix if scaled < 100 else f"{scaled:.0f}{suffix}"
    return str(int(value))


def sparkline_svg(values: Sequence[int], *, width: int = 120, height: int = 28, label: str = "") -> Markup:
    """Bars of ``values`` as inline SVG (no script needed); empty buckets stay a hairline.

    Drawn on a grid of whole units stretched to ``width`` (the viewBox), each bar a few short
    integers with its count as its title: a list's rows carry dozens of bars each, and these
    were two thirds of an inbox page's bytes with decimals and a fill on every bar."""
    count = len(values)
    # Five units a bar, four of them drawn, while bars are wider than 3 px; else no gap.
    slot, drawn = (5, 4) if count and width / count > 3 else (1, 1)
    peak = max(values, default=0) or 1
    scale = (height - 2) / peak
    rects = []
    for i, value in enumerate(values):
        x = i * slot
        if value:
            h = max(1, round(value * scale))
            rects.append(f'<rect x="{x}" y="{height - h}" width="{drawn}" height="{h}"><title>{value}</title></rect>')
        else:
            rects.append(f'<rect class="z" x="{x}" y="{height - 1}" width="{drawn}" height="1"><title>0</title></rect>')
    title = Markup.escape(label)
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {max(count * slot, 1)} {height}" '
        f'preserveAspectRatio="none" role="img" aria-label="{title}">{"".join(rects)}</svg>'
    )


def pretty_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


def _url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=time_ago,
        exact=exact_time,
        compact=compact_number,
        pretty_json=pretty_json,
        urlquote=lambda value: quote(str(value), safe=""),
    )
    env.globals.update(sparkline=sparkline_svg)
    return env


_ENV = _environment()


# Pages show what strangers' browsers sent (messages, URLs, properties): everything is escaped,
# and the policy keeps anything that slipped through from running (no inline script, no
# other origin). Pages are never framed (their forms could be clicked through) or cached.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """The page, with the layout's context: ``user``, ``csrf``, ``projects``, ``notice``."""
    state = request.state
    notice = unquote(request.cookies.get(NOTICE_COOKIE, ""))
    page = {
        "request": request,
        "user": getattr(state, "ui_user", None),
        "csrf": getattr(state, "ui_csrf", ""),
        "projects": getattr(state, "ui_projects", []),
        "project": getattr(state, "ui_project", None),
        "notice": notice,
        "url_with": lambda **changes: _url_with(request, **changes),
        "version": request.app.version,
    }
    page.update(context or {})
    html = _ENV.get_template(template).render(page)
    response = HTMLResponse(html, status_code=status_code, headers=_PAGE_HEADERS)
    if page["notice"]:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def redirect(url: str, notice: str | None = None) -> RedirectResponse:
    """303 to ``url`` (a form's result), with a notice the next page shows once."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        # Percent-encoded: a cookie value is Latin-1 at best, and notices name issues and roles.
        response.set_cookie(NOTICE_COOKIE, quote(notice[:300]), max_age=60, path="/", httponly=True, samesite="lax")
    return response
