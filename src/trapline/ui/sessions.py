"""Signing people in and out of the web UI, and the CSRF tokens of their forms.

A session is a random cookie value whose SHA-256 names a ``user_session`` row. Forms carry a
CSRF token derived from the session with the server's secret key (HMAC), so no token needs
storing and one stolen from a page works for that session only. Before sign-in there is no
session: the login form is protected by a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from trapline.accounts.models import Membership, User, UserSession
from trapline.accounts.passwords import hash_password, verify_password
from trapline.db.types import utcnow

__all__ = [
    "COOKIE",
    "LOGIN_CSRF_COOKIE",
    "SignedIn",
    "authenticate",
    "csrf_token",
    "end_session",
    "find_session",
    "needs_touch",
    "start_session",
    "stored_key",
    "tokens_match",
    "touch_session",
]

COOKIE = "trapline_session"
LOGIN_CSRF_COOKIE = "trapline_login_csrf"
# last_seen_at (and the sliding expiry) is refreshed at most this often: reading a page
# should not cost a write each time.
_TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request's session cookie."""

    user_id: int
    email: str
    name: str
    session_value: str
    last_seen_at: datetime


def stored_key(value: str) -> str:
    """What the database keeps of a session cookie's value."""
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_token(secret: str, session_value: str) -> str:
    """The token the session's forms must send back."""
    return hmac.new(secret.encode(), b"csrf:" + session_value.encode(), hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password who belongs to an organization."""
    user = session.scalar(select(User).where(User.email == email.strip().lower(), User.is_active.is_(True)))
    # Hashing even for an unknown email keeps the answer's timing from telling which exist.
    if user is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    member = session.scalar(select(Membership.id).where(Membership.user_id == user.id).limit(1))
    return user if member is not None else None


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def start_session(session: Session, user_id: int, *, lifetime: timedelta) -> str:
    """A new session for the user; returns the cookie value. The caller commits."""
    value = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        UserSession(secure_value=stored_key(value), user_id=user_id, expires_at=now + lifetime, last_seen_at=now)
    )
    # Expired sessions of anyone are deleted here rather than by a timer: sign-ins are rare.
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    return value


def find_session(session: Session, value: str, *, now: datetime | None = None) -> SignedIn | None:
    """Who the cookie signs in, if its session is live. Only reads: see ``touch_session``."""
    if not value or len(value) > 100:
        return None
    now = now or utcnow()
    row = session.scalar(
        select(UserSession).where(UserSession.secure_value == stored_key(value), UserSession.expires_at > now)
    )
    if row is None or not row.user.is_active:
        return None
    return SignedIn(
        user_id=row.user_id,
        email=row.user.email,
        name=row.user.first_name,
        session_value=value,
        last_seen_at=row.last_seen_at,
    )


def needs_touch(signed_in: SignedIn, now: datetime) -> bool:
    return now - signed_in.last_seen_at >= _TOUCH_EVERY


def touch_session(session: Session, value: str, *, lifetime: timedelta, now: datetime) -> None:
    """Slide the session's expiry from now; the caller knows ``needs_touch`` said so."""
    session.execute(
        update(UserSession)
        .where(UserSession.secure_value == stored_key(value))
        .values(last_seen_at=now, expires_at=now + lifetime)
    )
    session.commit()


def end_session(session: Session, value: str) -> None:
    session.execute(delete(UserSession).where(UserSession.secure_value == stored_key(value)))
