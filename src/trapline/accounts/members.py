"""Who belongs to an organization, the roles issues can be assigned to, and passwords.

Admins and owners manage members and roles (PostHog's levels: member < admin < owner); an
organization always keeps at least one owner. A new person gets a generated password that is
shown once, as keys are; they change it on their account page.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trapline.accounts.models import Membership, Role, User, UserSession
from trapline.accounts.passwords import hash_password, verify_password
from trapline.errors import InvalidInput, NotFound, PermissionDenied

__all__ = [
    "LEVELS",
    "MIN_PASSWORD_LENGTH",
    "Added",
    "add_member",
    "change_password",
    "create_role",
    "delete_role",
    "level_of",
    "remove_member",
    "reset_password",
]

LEVELS = ("member", "admin", "owner")
MIN_PASSWORD_LENGTH = 8
_MANAGERS = ("admin", "owner")


@dataclass(frozen=True)
class Added:
    user_id: int
    email: str
    # Set when the person is new to this server: the one time it can be shown.
    password: str | None


def level_of(session: Session, organization_id: uuid.UUID, user_id: int) -> str | None:
    return session.scalar(
        select(Membership.level).where(Membership.organization_id == organization_id, Membership.user_id == user_id)
    )


def _require_manager(session: Session, organization_id: uuid.UUID, user_id: int) -> str:
    level = level_of(session, organization_id, user_id)
    if level not in _MANAGERS:
        raise PermissionDenied("Only the organization's admins and owners can change its members and roles.")
    assert level is not None
    return level


def add_member(
    session: Session, organization_id: uuid.UUID, by_user_id: int, *, email: str, name: str, level: str
) -> Added:
    """Add someone (making their account if they have none) at ``level``; commits."""
    by_level = _require_manager(session, organization_id, by_user_id)
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise InvalidInput("Enter the person's email address.", attr="email")
    if level not in LEVELS:
        raise InvalidInput(f"The level must be one of {', '.join(LEVELS)}.", attr="level")
    if level == "owner" and by_level != "owner":
        raise PermissionDenied("Only owners can add owners.")
    user = session.scalar(select(User).where(User.email == email))
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User(email=email, first_name=name.strip()[:150], password_hash=hash_password(password))
        session.add(user)
        session.flush()
    elif level_of(session, organization_id, user.id) is not None:
        raise InvalidInput(f"{email} is a member already.", attr="email")
    session.add(Membership(organization_id=organization_id, user_id=user.id, level=level))
    try:
        session.commit()
    except IntegrityError:  # added by someone else at the same moment
        session.rollback()
        raise InvalidInput(f"{email} is a member already.", attr="email") from None
    return Added(user_id=user.id, email=email, password=password)


def remove_member(session: Session, organization_id: uuid.UUID, by_user_id: int, user_id: int) -> None:
    """Take someone out of the organization (their account stays, for other organizations)."""
    by_level = _require_manager(session, organization_id, by_user_id)
    membership = session.scalar(
        select(Membership).where(Membership.organization_id == organization_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("That person is not a member of this organization.")
    if membership.level == "owner":
        if by_level != "owner":
            raise PermissionDenied("Only owners can remove an owner.")
        owners = session.scalar(
            select(func.count()).where(Membership.organization_id == organization_id, Membership.level == "owner")
        )
        if owners == 1:
            raise InvalidInput("The organization's last owner cannot be removed: make someone else an owner first.")
    session.delete(membership)
    session.commit()


def create_role(session: Session, organization_id: uuid.UUID, by_user_id: int, name: str) -> Role:
    _require_manager(session, organization_id, by_user_id)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("A role needs a name of at most 200 characters.", attr="name")
    role = Role(organization_id=organization_id, name=name)
    session.add(role)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise InvalidInput(f"There is a role called “{name}” already.", attr="name") from None
    return role


def delete_role(session: Session, organization_id: uuid.UUID, by_user_id: int, role_id: uuid.UUID) -> None:
    """Delete a role; issues and rules assigned to it become unassigned (the database cascades)."""
    _require_manager(session, organization_id, by_user_id)
    deleted = session.execute(delete(Role).where(Role.organization_id == organization_id, Role.id == role_id))
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFound("There is no such role in this organization.")
    session.commit()


def change_password(session: Session, user_id: int, *, current: str, new: str, keep_session_key: str) -> None:
    """Set a new password; every other session of the user ends (a thief's too)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    if not verify_password(user.password_hash, current):
        raise InvalidInput("The current password is not right.", attr="current_password")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The new password must be at least {MIN_PASSWORD_LENGTH} characters long.", attr="password")
    user.password_hash = hash_password(new)
    session.execute(
        delete(UserSession).where(UserSession.user_id == user_id, UserSession.secure_value != keep_session_key)
    )
    session.commit()


def reset_password(session: Session, email: str, password: str | None = None) -> str:
    """Give the user with this email a new password (generated unless given) and end all of
    their sessions: the server operator's way back in for someone who forgot theirs."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"There is no user {email.strip().lower()}.")
    password = password if password is not None else secrets.token_urlsafe(12)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.", attr="password")
    user.password_hash = hash_password(password)
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    session.commit()
    return password
