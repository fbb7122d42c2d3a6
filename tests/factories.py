"""Plain functions that create rows with sensible defaults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from trapline.accounts.api_keys import generate_key, hash_key, mask_key
from trapline.accounts.models import Membership, Organization, PersonalApiKey, Role, User
from trapline.accounts.passwords import hash_password
from trapline.ids import new_token
from trapline.issues.models import Issue, IssueFingerprint
from trapline.projects.models import Project

# argon2 is slow on purpose; hash the one test password once.
PASSWORD = "password123"
PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class Tenant:
    """An organization, its owner, one project and personal API keys by scope."""

    organization_id: uuid.UUID
    user_id: int
    project_id: int
    project_token: str
    keys: dict[str, str] = field(default_factory=dict)

    def headers(self, scope: str = "*") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


def make_key(session: Session, user_id: int, organization_id: uuid.UUID, scopes: list[str]) -> str:
    key = generate_key()
    session.add(
        PersonalApiKey(
            user_id=user_id,
            organization_id=organization_id,
            label="test",
            secure_value=hash_key(key),
            mask_value=mask_key(key),
            scopes=scopes,
        )
    )
    return key


def make_user(session: Session, organization_id: uuid.UUID, email: str | None = None) -> User:
    user = User(email=email or f"{uuid.uuid4().hex[:8]}@example.com", password_hash=PASSWORD_HASH)
    session.add(user)
    session.flush()
    session.add(Membership(organization_id=organization_id, user_id=user.id, level="member"))
    session.flush()
    return user


def make_tenant(session: Session, name: str = "Acme") -> Tenant:
    org = Organization(name=name)
    session.add(org)
    session.flush()
    user = make_user(session, org.id)
    project = Project(organization_id=org.id, name=f"{name} web", api_token=new_token("phc_"))
    session.add(project)
    session.flush()
    tenant = Tenant(organization_id=org.id, user_id=user.id, project_id=project.id, project_token=project.api_token)
    for label, scopes in {
        "*": ["*"],
        "read": ["error_tracking:read"],
        "write": ["error_tracking:write"],
        "none": ["feature_flag:read"],
    }.items():
        tenant.keys[label] = make_key(session, user.id, org.id, scopes)
    session.commit()
    return tenant


def make_project(session: Session, organization_id: uuid.UUID, name: str = "second") -> Project:
    project = Project(organization_id=organization_id, name=name, api_token=new_token("phc_"))
    session.add(project)
    session.commit()
    return project


def make_role(session: Session, organization_id: uuid.UUID, name: str = "Backend") -> Role:
    role = Role(organization_id=organization_id, name=name)
    session.add(role)
    session.commit()
    return role


def make_issue(session: Session, project_id: int, fingerprints: list[str], name: str = "TypeError") -> Issue:
    issue = Issue(project_id=project_id, name=name, description="boom")
    session.add(issue)
    session.flush()
    for fingerprint in fingerprints:
        session.add(IssueFingerprint(project_id=project_id, issue_id=issue.id, fingerprint=fingerprint))
    session.commit()
    return issue
