"""Create an organization, a user, a project and an API key, whichever are missing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from trapline.accounts.api_keys import ALL_SCOPES, generate_key, hash_key, mask_key
from trapline.accounts.models import Membership, Organization, PersonalApiKey, User
from trapline.accounts.passwords import hash_password, verify_password
from trapline.errors import InvalidInput
from trapline.ids import new_token
from trapline.projects.models import Project

__all__ = ["BootstrapResult", "bootstrap"]

PROJECT_API_TOKEN_PREFIX = "phc_"


@dataclass(frozen=True)
class BootstrapResult:
    project_id: int
    project_api_token: str
    sentry_public_key: str
    personal_api_key: str
    created: tuple[str, ...]


def bootstrap(
    session: Session, *, email: str, password: str, organization: str, project: str, key_label: str
) -> BootstrapResult:
    """Ensure the user, organization, membership and project exist; always mint a new key.

    Keys are stored hashed, so an earlier key cannot be shown again: every run prints a new
    one, and running twice is safe (nothing is duplicated, earlier keys keep working).
    """
    created: list[str] = []
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("Enter a valid email address.", attr="email")
    if len(password) < 8:
        raise InvalidInput("The password must be at least 8 characters long.", attr="password")

    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, password_hash=hash_password(password))
        session.add(user)
        session.flush()
        created.append("user")
    elif not verify_password(user.password_hash, password):
        raise InvalidInput(f"A user {email} exists and the password does not match.", attr="password")

    org = session.scalar(
        select(Organization)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id, Organization.name == organization)
    )
    if org is None:
        org = Organization(name=organization)
        session.add(org)
        session.flush()
        session.add(Membership(organization_id=org.id, user_id=user.id, level="owner"))
        created.append("organization")

    proj = session.scalar(select(Project).where(Project.organization_id == org.id, Project.name == project))
    if proj is None:
        proj = Project(organization_id=org.id, name=project, api_token=new_token(PROJECT_API_TOKEN_PREFIX))
        session.add(proj)
        session.flush()
        created.append("project")

    key = generate_key()
    session.add(
        PersonalApiKey(
            user_id=user.id,
            organization_id=org.id,
            label=key_label,
            secure_value=hash_key(key),
            mask_value=mask_key(key),
            scopes=[ALL_SCOPES],
        )
    )
    created.append("personal_api_key")
    session.commit()
    return BootstrapResult(
        project_id=proj.id,
        project_api_token=proj.api_token,
        sentry_public_key=proj.sentry_public_key,
        personal_api_key=key,
        created=tuple(created),
    )
