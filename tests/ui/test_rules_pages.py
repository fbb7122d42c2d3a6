"""The rules pages: suppression, grouping and assignment rules made, changed and ordered in a browser."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.capture import drain, exception, exception_event, post_batch
from tests.factories import Tenant, make_role, make_user
from tests.ui.conftest import csrf_of
from trapline.db.engine import Database
from trapline.events.models import DroppedEvents, ExceptionEvent
from trapline.issues.models import IssueAssignment
from trapline.rules.models import SuppressionRule

# What PostHog's rule editor sends for "$exception_types is exactly TypeError AND $current_url
# contains /admin": one group inside an AND group, list values for exact, text for icontains.
EDITOR_FILTERS: dict[str, Any] = {
    "type": "AND",
    "values": [
        {
            "type": "AND",
            "values": [
                {"key": "$exception_types", "type": "event", "operator": "exact", "value": ["TypeError"]},
                {"key": "$current_url", "type": "event", "operator": "icontains", "value": "/admin"},
            ],
        }
    ],
}


def page_url(tenant: Tenant, kind: str = "suppression", *rest: str) -> str:
    return "/".join([f"/project/{tenant.project_id}/settings/{kind}-rules", *rest])


def api_url(tenant: Tenant, kind: str = "suppression", *rest: str) -> str:
    return "/".join([f"/api/projects/{tenant.project_id}/error_tracking/{kind}_rules", *rest])


def rows(*conditions: tuple[str, str, str], match: str = "AND", **fields: str) -> dict[str, Any]:
    """A rule form as a browser posts it: the filled rows, then a blank spare one."""
    filled = [*conditions, ("", "exact", "")]
    return {
        "match": match,
        "shape": "nested",
        "mode": "builder",
        "key": [c[0] for c in filled],
        "operator": [c[1] for c in filled],
        "value": [c[2] for c in filled],
        "property_type": ["event"] * len(filled),
        **fields,
    }


def submit(ui: TestClient, url: str, form: dict[str, Any], page: str | None = None) -> Any:
    # The token belongs to the session, so any page of it carries the same one.
    token = csrf_of(page if page is not None else ui.get("/account").text)
    return ui.post(url, data={**form, "csrf_token": token}, follow_redirects=False)


def rule_ids(ui: TestClient, tenant: Tenant, kind: str = "suppression") -> list[str]:
    answer = ui.get(api_url(tenant, kind), headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    return [rule["id"] for rule in answer.json()["results"]]


def api_rule(ui: TestClient, tenant: Tenant, rule_id: str, kind: str = "suppression") -> dict[str, Any]:
    answer = ui.get(api_url(tenant, kind, rule_id), headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    rule: dict[str, Any] = answer.json()
    return rule


def api_create(ui: TestClient, tenant: Tenant, body: dict[str, Any], kind: str = "suppression") -> str:
    answer = ui.post(api_url(tenant, kind), json=body, headers=tenant.headers())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def dropped(database: Database, tenant: Tenant) -> dict[str, tuple[int, str | None]]:
    with database.session(write=False) as session:
        return {
            row.reason: (row.count, row.last_detail)
            for row in session.scalars(select(DroppedEvents).where(DroppedEvents.project_id == tenant.project_id))
        }


def stored_events(database: Database, tenant: Tenant) -> int:
    with database.session(write=False) as session:
        return len(
            session.scalars(select(ExceptionEvent.id).where(ExceptionEvent.project_id == tenant.project_id)).all()
        )


# --- suppression rules, end to end ------------------------------------------------------------


def test_a_suppression_rule_from_the_form_is_the_api_rule_and_drops_matching_exceptions(
    ui: TestClient, tenant: Tenant, database: Database
):
    url = page_url(tenant)
    answer = submit(
        ui,
        url,
        rows(("$exception_types", "exact", "TypeError"), ("$current_url", "icontains", "/admin"), sampling_rate="1"),
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(url + "#rule-")
    made = api_rule(ui, tenant, answer.headers["location"].split("#rule-")[1])
    # The same rule made through the API with the editor's JSON is stored the same way.
    twin = api_rule(ui, tenant, api_create(ui, tenant, {"filters": EDITOR_FILTERS}))
    assert made["filters"] == twin["filters"] == EDITOR_FILTERS
    assert made["sampling_rate"] == twin["sampling_rate"] == 1.0
    assert made["disabled_data"] is None

    listing = ui.get(url)
    assert "The suppression rule was created." in listing.text
    assert (
        re.sub(r"<[^>]+>", "", listing.text).count(
            "$exception_types is exactly TypeError AND $current_url contains /admin"
        )
        == 2
    )

    matching = exception_event(exception("TypeError", "x is undefined"), **{"$current_url": "https://app/admin/users"})
    elsewhere = exception_event(exception("TypeError", "x is undefined"), **{"$current_url": "https://app/shop"})
    other_type = exception_event(exception("RangeError", "too far"), **{"$current_url": "https://app/admin/"})
    assert post_batch(ui, tenant.project_token, matching, elsewhere, other_type).status_code == 200
    drain(database)
    count, detail = dropped(database, tenant)["suppressed_by_rule"]
    assert count == 1
    assert detail is not None and made["id"] in detail  # the first matching rule: the one made in the UI
    assert stored_events(database, tenant) == 2
    # The count is on the autocapture page too, in words.
    assert "dropped by a suppression rule" in ui.get(f"/project/{tenant.project_id}/settings/autocapture").text


def test_a_sampling_rate_and_a_match_any_rule(ui: TestClient, tenant: Tenant):
    answer = submit(
        ui,
        page_url(tenant),
        rows(("$exception_values", "icontains", "timeout\nreset"), ("$lib", "is_not", "web"), match="OR")
        | {"sampling_rate": "0.25"},
    )
    assert answer.status_code == 303
    rule = api_rule(ui, tenant, rule_ids(ui, tenant)[0])
    assert rule["sampling_rate"] == 0.25
    assert rule["filters"]["values"][0] == {
        "type": "OR",
        "values": [
            {"key": "$exception_values", "type": "event", "operator": "icontains", "value": ["timeout", "reset"]},
            {"key": "$lib", "type": "event", "operator": "is_not", "value": ["web"]},
        ],
    }
    assert "25%" in ui.get(page_url(tenant)).text


def test_rules_browsers_can_run_are_marked(ui: TestClient, tenant: Tenant):
    submit(ui, page_url(tenant), rows(("$exception_types", "exact", "ChunkLoadError")))
    submit(ui, page_url(tenant), rows(("$current_url", "regex", "^https://admin")))
    listing = ui.get(page_url(tenant)).text
    assert listing.count("also in browsers") == 1


# --- editing ------------------------------------------------------------------------------------


def test_editing_shows_the_rule_in_rows_and_saving_changes_it(ui: TestClient, tenant: Tenant, database: Database):
    rule_id = api_create(ui, tenant, {"filters": EDITOR_FILTERS, "sampling_rate": 0.5})
    edit = ui.get(page_url(tenant, "suppression", rule_id))
    assert edit.status_code == 200
    assert 'value="$exception_types"' in edit.text and ">TypeError</textarea>" in edit.text
    assert 'value="$current_url"' in edit.text and ">/admin</textarea>" in edit.text
    assert 'name="sampling_rate" value="0.5"' in edit.text

    answer = submit(
        ui, page_url(tenant, "suppression", rule_id), rows(("$exception_types", "exact", "RangeError")), edit.text
    )
    assert answer.status_code == 303
    rule = api_rule(ui, tenant, rule_id)
    assert rule["filters"]["values"][0]["values"] == [
        {"key": "$exception_types", "type": "event", "operator": "exact", "value": ["RangeError"]}
    ]
    assert rule["sampling_rate"] == 1.0  # the form posted its default: the field is always sent


def test_a_disabled_rule_shows_why_and_saving_it_turns_it_on(ui: TestClient, tenant: Tenant, database: Database):
    # A regex the API accepts and the pipeline cannot evaluate: made in the UI, it is saved (as
    # through the API), with a warning; the first event then disables it.
    answer = submit(ui, page_url(tenant), rows(("$exception_values", "regex", "(unclosed")))
    assert answer.status_code == 303
    notice = ui.get(page_url(tenant)).text
    assert "cannot run as it is" in notice and "invalid regex" in notice
    rule_id = rule_ids(ui, tenant)[0]

    post_batch(ui, tenant.project_token, exception_event(exception("TypeError", "boom")))
    drain(database)
    disabled = api_rule(ui, tenant, rule_id)["disabled_data"]
    assert disabled is not None and "invalid regex" in disabled["message"]
    listing = ui.get(page_url(tenant)).text
    assert "disabled" in listing
    # The pipeline's message, naming the row rather than the JSON path.
    assert disabled["message"].startswith("filters.values[0].values[0]: invalid regex")
    assert disabled["message"].replace("filters.values[0].values[0]", "condition 1") in listing.replace("&#39;", "'")
    assert "Properties of the event it failed on" in listing
    edit = ui.get(page_url(tenant, "suppression", rule_id))
    assert "This rule is disabled" in edit.text

    fixed = submit(
        ui, page_url(tenant, "suppression", rule_id), rows(("$exception_values", "regex", "^boom")), edit.text
    )
    assert fixed.status_code == 303
    assert api_rule(ui, tenant, rule_id)["disabled_data"] is None  # as the API's update does


def test_filters_rows_cannot_show_are_edited_as_json(ui: TestClient, tenant: Tenant):
    deep = {
        "type": "OR",
        "values": [
            {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": ["web"]}]},
            {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": ["node"]}]},
        ],
    }
    rule_id = api_create(ui, tenant, {"filters": deep})
    edit = ui.get(page_url(tenant, "suppression", rule_id))
    assert 'name="mode" value="json"' in edit.text
    assert 'name="key"' not in edit.text  # no rows that would save over the filters
    assert "$lib is exactly web OR $lib is exactly node" in re.sub(r"<[^>]+>", "", edit.text)

    changed = {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "exact", "value": [1]}]}
    answer = submit(
        ui, page_url(tenant, "suppression", rule_id), {"mode": "json", "filters_json": str(changed).replace("'", '"')}
    )
    assert answer.status_code == 303
    assert api_rule(ui, tenant, rule_id)["filters"] == changed


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "words"),
    [
        (rows(("$exception_types", "exact", "")), "Condition 1 ($exception_types is exactly …) needs a value"),
        (rows(("", "icontains", "timeout")), "Condition 1 has a value but no property"),
        (rows(("$exception_types", "exact", "A"), ("$lib", "nonsense", "web")), "condition 2.operator"),
        (rows(("$lib", "exact", "web"), sampling_rate="2"), "The sampling rate must be a number from 0 to 1"),
        (rows(("$lib", "exact", "web"), sampling_rate="lots"), "The sampling rate must be a number from 0 to 1"),
        ({"mode": "json", "filters_json": "{not json"}, "The filters are not valid JSON"),
        ({"mode": "json", "filters_json": '{"type": "AND"}'}, "Invalid filters"),
    ],
)
def test_bad_input_answers_400_in_words_with_the_form_kept(ui: TestClient, tenant: Tenant, form: dict, words: str):
    answer = submit(ui, page_url(tenant), form)
    assert answer.status_code == 400
    assert "The rule was not saved." in answer.text
    assert words in answer.text.replace("&#39;", "'")
    for value in form.get("value", []):
        if value:
            assert f">{value}</textarea>" in answer.text  # what was typed is still there
    assert "Traceback" not in answer.text
    assert rule_ids(ui, tenant) == []


def test_an_unknown_operator_is_the_apis_error(ui: TestClient, tenant: Tenant):
    answer = submit(ui, page_url(tenant), rows(("$lib", "nonsense", "web")))
    api = ui.post(
        api_url(tenant),
        json={"filters": {"type": "AND", "values": [{"key": "$lib", "type": "event", "operator": "nonsense"}]}},
        headers=tenant.headers(),
    )
    assert api.status_code == 400
    assert "is not a known operator" in api.json()["detail"]
    assert "&#39;nonsense&#39; is not a known operator" in answer.text
    # The row keeps the operator it had, so the select can show it.
    assert '<option value="nonsense" selected>' in answer.text


def test_a_bad_edit_keeps_the_rule_and_the_form(ui: TestClient, tenant: Tenant):
    rule_id = api_create(ui, tenant, {"filters": EDITOR_FILTERS})
    answer = submit(ui, page_url(tenant, "suppression", rule_id), rows(("$exception_types", "exact", "")))
    assert answer.status_code == 400
    assert "Edit suppression rule" in answer.text and "needs a value" in answer.text
    assert api_rule(ui, tenant, rule_id)["filters"] == EDITOR_FILTERS


# --- delete and order ----------------------------------------------------------------------------


def test_delete(ui: TestClient, tenant: Tenant):
    rule_id = api_create(ui, tenant, {"filters": EDITOR_FILTERS})
    answer = submit(ui, page_url(tenant, "suppression", rule_id, "delete"), {}, ui.get(page_url(tenant)).text)
    assert answer.status_code == 303
    assert rule_ids(ui, tenant) == []
    assert "was deleted" in ui.get(page_url(tenant)).text
    again = submit(ui, page_url(tenant, "suppression", rule_id, "delete"), {}, ui.get(page_url(tenant)).text)
    assert again.status_code == 404


@pytest.mark.parametrize("kind", ["suppression", "grouping", "assignment"])
def test_up_and_down_reorder_through_the_service(ui: TestClient, tenant: Tenant, kind: str):
    body: dict[str, Any] = {"filters": EDITOR_FILTERS}
    if kind == "assignment":
        body["assignee"] = {"type": "user", "id": tenant.user_id}
    # Made through the API, all three share order key 0 and are ordered by creation.
    first, second, third = (api_create(ui, tenant, body, kind) for _ in range(3))
    page = ui.get(page_url(tenant, kind)).text
    assert page.index(f'id="rule-{first}"') < page.index(f'id="rule-{second}"') < page.index(f'id="rule-{third}"')

    answer = submit(ui, page_url(tenant, kind, third, "move"), {"direction": "up"}, page)
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(f"#rule-{third}")
    assert rule_ids(ui, tenant, kind) == [first, third, second]
    submit(ui, page_url(tenant, kind, first, "move"), {"direction": "down"}, page)
    assert rule_ids(ui, tenant, kind) == [third, first, second]
    # The first rule cannot go further up: nothing changes, and the page says so.
    edge = submit(ui, page_url(tenant, kind, third, "move"), {"direction": "up"}, page)
    assert edge.status_code == 303
    assert rule_ids(ui, tenant, kind) == [third, first, second]
    assert "already first" in ui.get(page_url(tenant, kind)).text


def test_new_rules_go_last(ui: TestClient, tenant: Tenant):
    earlier = api_create(ui, tenant, {"filters": EDITOR_FILTERS, "order_key": 5})
    submit(ui, page_url(tenant), rows(("$lib", "exact", "web")))
    ids = rule_ids(ui, tenant)
    assert ids[0] == earlier and len(ids) == 2
    assert api_rule(ui, tenant, ids[1])["order_key"] == 6


# --- grouping and assignment rules ---------------------------------------------------------------


def test_a_grouping_rule_with_an_assignee_groups_and_assigns(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        colleague = make_user(session, tenant.organization_id, email="ops@example.com")
        session.commit()
        colleague_id = colleague.id
    page = ui.get(page_url(tenant, "grouping"))
    assert f'value="user:{colleague_id}"' in page.text and "ops@example.com" in page.text
    answer = submit(
        ui,
        page_url(tenant, "grouping"),
        rows(
            ("$exception_values", "icontains", "ResizeObserver"), assignee=f"user:{colleague_id}", description="Noise"
        ),
        page.text,
    )
    assert answer.status_code == 303
    rule_id = rule_ids(ui, tenant, "grouping")[0]
    rule = api_rule(ui, tenant, rule_id, "grouping")
    assert rule["assignee"] == {"type": "user", "id": colleague_id}
    assert rule["description"] == "Noise"

    post_batch(
        ui,
        tenant.project_token,
        exception_event(exception("Error", "ResizeObserver loop limit exceeded")),
        exception_event(exception("TypeError", "ResizeObserver loop completed")),
    )
    drain(database)
    rule = api_rule(ui, tenant, rule_id, "grouping")
    assert rule["issue"] is not None
    with database.session(write=False) as session:
        assignment = session.scalar(
            select(IssueAssignment).where(IssueAssignment.issue_id == uuid.UUID(rule["issue"]["id"]))
        )
        assert assignment is not None and assignment.user_id == colleague_id
    listing = ui.get(page_url(tenant, "grouping")).text
    assert f'href="/project/{tenant.project_id}/error_tracking/{rule["issue"]["id"]}"' in listing
    assert "ops@example.com" in listing


def test_a_grouping_rule_needs_a_condition_and_its_assignee_can_be_cleared(ui: TestClient, tenant: Tenant):
    empty = submit(ui, page_url(tenant, "grouping"), rows())
    assert empty.status_code == 400
    assert "Filters must contain at least one filter value." in empty.text  # the API's own words

    rule_id = api_create(
        ui, tenant, {"filters": EDITOR_FILTERS, "assignee": {"type": "user", "id": tenant.user_id}}, "grouping"
    )
    edit = ui.get(page_url(tenant, "grouping", rule_id))
    assert f'<option value="user:{tenant.user_id}" selected>' in edit.text
    submit(ui, page_url(tenant, "grouping", rule_id), rows(("$lib", "exact", "web"), assignee=""), edit.text)
    assert api_rule(ui, tenant, rule_id, "grouping")["assignee"] is None


def test_assignment_rules_take_a_role_and_need_an_assignee(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        role_id = make_role(session, tenant.organization_id, "Backend").id
    none = submit(ui, page_url(tenant, "assignment"), rows(("$lib", "exact", "posthog-python")))
    assert none.status_code == 400 and "Choose who the rule assigns issues to." in none.text

    answer = submit(
        ui, page_url(tenant, "assignment"), rows(("$lib", "exact", "posthog-python"), assignee=f"role:{role_id}")
    )
    assert answer.status_code == 303
    rule = api_rule(ui, tenant, rule_ids(ui, tenant, "assignment")[0], "assignment")
    assert rule["assignee"] == {"type": "role", "id": str(role_id)}
    assert "Backend" in ui.get(page_url(tenant, "assignment")).text
    # Issue filters make sense for assignment rules only.
    assert 'value="error_tracking_issue"' in ui.get(page_url(tenant, "assignment")).text
    assert 'value="error_tracking_issue"' not in ui.get(page_url(tenant)).text


def test_an_assignee_of_another_organization_is_refused(ui: TestClient, tenant: Tenant, other_tenant: Tenant):
    answer = submit(
        ui, page_url(tenant, "assignment"), rows(("$lib", "exact", "web"), assignee=f"user:{other_tenant.user_id}")
    )
    assert answer.status_code == 400
    assert "Assignee user does not belong to this organization." in answer.text
    bogus = submit(ui, page_url(tenant, "assignment"), rows(("$lib", "exact", "web"), assignee="user:abc"))
    assert bogus.status_code == 400 and "The assignee is not valid" in bogus.text
    assert rule_ids(ui, tenant, "assignment") == []


# --- access -----------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused(ui: TestClient, tenant: Tenant):
    rule_id = api_create(ui, tenant, {"filters": EDITOR_FILTERS})
    for url, form in (
        (page_url(tenant), rows(("$lib", "exact", "web"))),
        (page_url(tenant, "suppression", rule_id), rows(("$lib", "exact", "web"))),
        (page_url(tenant, "suppression", rule_id, "delete"), {}),
        (page_url(tenant, "suppression", rule_id, "move"), {"direction": "down"}),
    ):
        answer = ui.post(url, data=form)
        assert answer.status_code == 403, url
    assert rule_ids(ui, tenant) == [rule_id]
    assert api_rule(ui, tenant, rule_id)["filters"] == EDITOR_FILTERS


def test_other_organizations_rules_do_not_exist(ui: TestClient, tenant: Tenant, other_tenant: Tenant):
    theirs = api_create(ui, other_tenant, {"filters": EDITOR_FILTERS})
    assert ui.get(page_url(other_tenant)).status_code == 404
    # Their rule, through our project, is not found either.
    assert ui.get(page_url(tenant, "suppression", theirs)).status_code == 404
    assert ui.get(page_url(tenant, "suppression", "not-a-uuid")).status_code == 404
    token = csrf_of(ui.get(page_url(tenant)).text)
    assert ui.post(page_url(tenant, "suppression", theirs, "delete"), data={"csrf_token": token}).status_code == 404
    assert rule_ids(ui, other_tenant) == [theirs]


def test_the_three_pages_have_tabs_and_read_without_javascript(ui: TestClient, tenant: Tenant):
    for kind in ("suppression", "grouping", "assignment"):
        page = ui.get(page_url(tenant, kind))
        assert page.status_code == 200
        assert f'href="{page_url(tenant, kind)}" aria-current="page"' in page.text
        # Three blank rows to fill in without the "add condition" button, which needs the script.
        assert page.text.count('<tr class="condition">') == 3 + 1  # plus the template's
        assert "data-add-condition hidden" in page.text
    assert ui.get("/assets/settings.js").status_code == 200


def test_a_rule_disabled_by_the_pipeline_is_skipped_until_saved(ui: TestClient, tenant: Tenant, database: Database):
    rule_id = api_create(ui, tenant, {"filters": EDITOR_FILTERS})
    with database.session(write=True) as session:
        session.execute(
            update(SuppressionRule)
            .where(SuppressionRule.id == uuid.UUID(rule_id))
            .values(disabled_data={"message": "Unsupported filter type cohort", "props": {"$lib": "web"}})
        )
        session.commit()
    listing = ui.get(page_url(tenant)).text
    assert "Unsupported filter type cohort" in listing and "turn it on again" in listing
    edit = ui.get(page_url(tenant, "suppression", rule_id))
    submit(ui, page_url(tenant, "suppression", rule_id), rows(("$exception_types", "exact", "TypeError")), edit.text)
    with database.session(write=False) as session:
        rule = session.get(SuppressionRule, uuid.UUID(rule_id))
        assert rule is not None and rule.disabled_data is None
