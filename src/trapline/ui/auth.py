"""Signing in and out: ``/login``, ``/logout``, and ``/`` sending people where they belong."""

from __future__ import annotations

import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from trapline.api.deps import DatabaseDep, SettingsDep
from trapline.ui.deps import CSRF_FIELD, CsrfChecked, UiUser, check_origin, session_lifetime, user_projects
from trapline.ui.errors import UiRoute
from trapline.ui.render import redirect, render
from trapline.ui.sessions import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    authenticate,
    end_session,
    find_session,
    start_session,
    tokens_match,
)
from trapline.ui.throttle import LoginThrottle

__all__ = ["router", "safe_next"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//evil.example``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _secure(request: Request, settings: SettingsDep) -> bool:
    return settings.base_url.startswith("https://") or request.url.scheme == "https"


def _login_form(request: Request, next_url: str, *, error: str = "", email: str = "", status: int = 200) -> Response:
    # A fresh double-submit token each time the form is shown.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"next": next_url, "error": error, "email": email, "login_csrf": token, "csrf_field": CSRF_FIELD},
        status_code=status,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="lax")
    return response


@router.get("/login")
def login_page(request: Request, db: DatabaseDep, next: Annotated[str, Query()] = "/") -> Response:
    value = request.cookies.get(COOKIE, "")
    if value:
        with db.session(write=False) as session:
            if find_session(session, value) is not None:
                return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(request, safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_origin(request, settings)
    target = safe_next(next)
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return _login_form(
            request, target, email=email, status=403,
            error="The sign-in form had expired. It has been reloaded: sign in again.",
        )  # fmt: skip
    if not email or not password:
        return _login_form(request, target, email=email, status=400, error="Enter your email and password.")
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else ""
    wait = throttle.retry_after(email, address)
    if wait:
        minutes = max(1, math.ceil(wait / 60))
        response = _login_form(
            request, target, email=email, status=429,
            error=f"Too many failed sign-ins. Try again in {minutes} minute{'' if minutes == 1 else 's'}.",
        )  # fmt: skip
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    with db.session(write=True) as session:
        user = authenticate(session, email, password)
        value = start_session(session, user.id, lifetime=session_lifetime(settings)) if user is not None else ""
        session.commit()
    # The throttle writes in its own transactions, after this one ends: on SQLite a second
    # write transaction inside the first would wait on itself.
    if user is None:
        throttle.failed(email, address)
        return _login_form(
            request, target, email=email, status=400,
            error="That email and password do not match an account here.",
        )  # fmt: skip
    throttle.succeeded(email, address)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(session_lifetime(settings).total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, user: UiUser, _: CsrfChecked, db: DatabaseDep) -> Response:
    with db.session(write=True) as session:
        end_session(session, user.session_value)
        session.commit()
    response = redirect("/login", "You are signed out.")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request, user: UiUser, db: DatabaseDep) -> Response:
    projects = request.state.ui_projects
    if not projects:
        with db.session(write=False) as session:
            projects = user_projects(session, user.user_id)
    if not projects:
        return RedirectResponse("/projects", status_code=303)  # says there are none, and how to make one
    return RedirectResponse(f"/project/{projects[0].id}/error_tracking", status_code=303)


@router.get("/project-switch")
def project_switch(user: UiUser, project_id: Annotated[int, Query(ge=1, le=2**62)]) -> Response:
    # The switcher is a GET form (it works without JavaScript); membership is checked there.
    return RedirectResponse(f"/project/{project_id}/error_tracking", status_code=303)
