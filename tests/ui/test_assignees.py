"""How forms name an assignee, and who an organization's assignable people and roles are."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import Tenant, make_user
from trapline.accounts.models import Role
from trapline.db.engine import Database
from trapline.errors import InvalidInput
from trapline.ui.assignees import assignable, form_value, parse_form_value


def test_form_values_round_trip():
    role = uuid.uuid4()
    for assignee in (("user", 42), ("role", role), None):
        assert parse_form_value(form_value(assignee)) == assignee  # type: ignore[arg-type]
    assert parse_form_value(f" role:{role} ") == ("role", role)


@pytest.mark.parametrize("bad", ["user:", "user:-1", "role:nope", "42", "user:４２", "user:99999999999", "team:1"])
def test_anything_else_is_refused_in_words(bad: str):
    with pytest.raises(InvalidInput, match="choose a person or a role"):
        parse_form_value(bad)


def test_assignable_lists_the_organizations_active_people_and_roles(
    database: Database, tenant: Tenant, other_tenant: Tenant
):
    with database.session(write=True) as session:
        named = make_user(session, tenant.organization_id, email="ada@example.com")
        named.first_name = "Ada"
        gone = make_user(session, tenant.organization_id, email="gone@example.com")
        gone.is_active = False
        role = Role(organization_id=tenant.organization_id, name="Payments")
        session.add(role)
        session.add(Role(organization_id=other_tenant.organization_id, name="Elsewhere"))
        session.commit()
        members = assignable(session, tenant.organization_id)
        assert (named.id, "Ada (ada@example.com)") in members.users
        assert gone.id not in {ident for ident, _ in members.users}
        assert members.roles == [(role.id, "Payments")]
        assert members.name(("role", role.id)) == "Payments"
        assert members.name(("user", other_tenant.user_id)) is None
