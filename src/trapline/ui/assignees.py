"""Who issues can be assigned to: an organization's people and roles, and how forms name one.

Forms name an assignee as ``user:<id>`` or ``role:<uuid>`` (empty for nobody); the inbox, the
issue page and the rule forms all read and write that one spelling.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.accounts.models import Membership, Role, User
from trapline.db.types import INTEGER_RANGE
from trapline.errors import InvalidInput
from trapline.rules.service import Assignee

__all__ = ["Assignable", "assignable", "form_value", "parse_form_value"]


@dataclass(frozen=True)
class Assignable:
    """The people (id, "Name (email)" or email) and roles (id, name) of an organization."""

    users: list[tuple[int, str]]
    roles: list[tuple[uuid.UUID, str]]

    def name(self, assignee: Assignee | None) -> str | None:
        """The label of an assignee, or None when nobody is or they left the organization."""
        if assignee is None:
            return None
        kind, ident = assignee
        names: dict[object, str] = dict(self.users) if kind == "user" else dict(self.roles)
        return names.get(ident)

    def knows(self, assignee: Assignee) -> bool:
        return self.name(assignee) is not None


def assignable(session: Session, organization_id: uuid.UUID) -> Assignable:
    users = session.execute(
        select(User.id, User.first_name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == organization_id, User.is_active.is_(True))
        .order_by(User.first_name, User.email)
    ).all()
    roles = session.execute(
        select(Role.id, Role.name).where(Role.organization_id == organization_id).order_by(Role.name)
    ).all()
    return Assignable(
        users=[(row.id, f"{row.first_name} ({row.email})" if row.first_name else row.email) for row in users],
        roles=[(row.id, row.name) for row in roles],
    )


def form_value(assignee: Assignee | None) -> str:
    if assignee is None:
        return ""
    kind, ident = assignee
    return f"{kind}:{ident}"


def parse_form_value(value: str) -> Assignee | None:
    """``user:<id>`` or ``role:<uuid>`` as an assignee; empty is nobody; anything else is refused."""
    value = value.strip()
    if not value:
        return None
    kind, _, ident = value.partition(":")
    # A number past user.id's column is no user (and PostgreSQL refuses to compare with it).
    if kind == "user" and ident.isascii() and ident.isdigit() and int(ident) in INTEGER_RANGE:
        return ("user", int(ident))
    if kind == "role":
        try:
            return ("role", uuid.UUID(ident))
        except ValueError:
            pass
    raise InvalidInput(f"“{value[:60]}” is not an assignee: choose a person or a role from the list.", attr="assignee")
