"""The project settings pages: autocapture, symbol sets, releases and SDK setup, through real requests."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.capture import drain, exception, post_batch
from tests.factories import Tenant
from tests.ui.conftest import csrf_of
from trapline.db.engine import Database
from trapline.db.types import utcnow
from trapline.events.models import ExceptionEvent
from trapline.ids import uuid7
from trapline.projects.models import Project
from trapline.releases.models import Release
from trapline.sentry.auth import dsn
from trapline.symbols.models import SymbolSet
from trapline.ui.autocapture_page import ControlsInput, controls_body, ignored_patterns
from trapline.ui.drop_words import dropped_reason


def settings_url(tenant: Tenant, page: str, *rest: str) -> str:
    return "/".join([f"/project/{tenant.project_id}/settings/{page}", *rest])


def api(ui: TestClient, tenant: Tenant, path: str) -> Any:
    answer = ui.get(f"/api/projects/{tenant.project_id}/{path}", headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(ui: TestClient, url: str, data: dict[str, Any]) -> Any:
    token = csrf_of(ui.get("/account").text)
    return ui.post(url, data={**data, "csrf_token": token}, follow_redirects=False)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


# --- autocapture -----------------------------------------------------------------------------


def test_exception_autocapture_is_switched_as_the_api_switches_it(ui: TestClient, tenant: Tenant):
    page = ui.get(settings_url(tenant, "autocapture"))
    assert page.status_code == 200
    assert "Turn exception autocapture off" in page.text
    assert f"/array/{tenant.project_token}/config" in page.text

    answer = post(ui, settings_url(tenant, "autocapture", "exceptions"), {"enabled": "false"})
    assert answer.status_code == 303
    assert api(ui, tenant, "")["autocapture_exceptions_opt_in"] is False
    page = ui.get(settings_url(tenant, "autocapture")).text
    assert "Exception autocapture is off" in page and "Turn exception autocapture on" in page
    # posthog-js hears it from the remote config.
    config = ui.get(f"/array/{tenant.project_token}/config").json()
    assert config["autocaptureExceptions"] is False

    post(ui, settings_url(tenant, "autocapture", "exceptions"), {"enabled": "true"})
    assert api(ui, tenant, "")["autocapture_exceptions_opt_in"] is True


def test_a_bad_switch_value_is_refused_in_words(ui: TestClient, tenant: Tenant):
    answer = post(ui, settings_url(tenant, "autocapture", "exceptions"), {"enabled": "maybe"})
    assert answer.status_code == 400
    assert "Exception autocapture: Input should be a valid boolean" in answer.text
    assert api(ui, tenant, "")["autocapture_exceptions_opt_in"] is True


CONTROLS_FORM = {
    "url_blocklist": "/admin(/|$)\r\n\r\n^https://internal\\.",
    "url_triggers": "/checkout",
    "event_triggers": "signed_up\npurchase",
    "flag_key": "beta-errors",
    "flag_variant": "test",
    "sample_rate": "0.5",
    "match_type": "any",
}


def test_controls_are_saved_and_read_back_through_the_api(ui: TestClient, tenant: Tenant):
    answer = post(ui, settings_url(tenant, "autocapture", "controls"), CONTROLS_FORM)
    assert answer.status_code == 303
    [saved] = api(ui, tenant, "error_tracking/autocapture_controls")["results"]
    assert saved["url_blocklist"] == [
        {"url": "/admin(/|$)", "matching": "regex"},
        {"url": "^https://internal\\.", "matching": "regex"},
    ]
    assert saved["url_triggers"] == [{"url": "/checkout", "matching": "regex"}]
    assert saved["event_triggers"] == ["signed_up", "purchase"]
    assert saved["linked_feature_flag"] == {"key": "beta-errors", "variant": "test"}
    assert saved["sample_rate"] == "0.50"
    assert saved["match_type"] == "any"

    # The form shows them back, and saving again changes the same object.
    page = ui.get(settings_url(tenant, "autocapture")).text
    assert ">/admin(/|$)\n^https://internal\\.</textarea>" in page
    assert 'name="flag_key" value="beta-errors"' in page and 'value="0.50"' in page
    assert 'value="any" checked' in page
    post(ui, settings_url(tenant, "autocapture", "controls"), {**CONTROLS_FORM, "flag_key": "", "url_triggers": ""})
    [again] = api(ui, tenant, "error_tracking/autocapture_controls")["results"]
    assert again["id"] == saved["id"]
    assert again["linked_feature_flag"] is None and again["url_triggers"] == []


def test_controls_made_through_the_api_keep_their_flag_id(ui: TestClient, tenant: Tenant):
    made = ui.post(
        f"/api/projects/{tenant.project_id}/error_tracking/autocapture_controls",
        json={"linked_feature_flag": {"id": 7, "key": "beta", "variant": None}, "event_triggers": ["x"]},
        headers=tenant.headers(),
    )
    assert made.status_code == 201
    page = ui.get(settings_url(tenant, "autocapture")).text
    assert 'name="flag_key" value="beta"' in page and ">x</textarea>" in page
    post(ui, settings_url(tenant, "autocapture", "controls"), {**CONTROLS_FORM, "flag_key": "beta", "flag_variant": ""})
    [saved] = api(ui, tenant, "error_tracking/autocapture_controls")["results"]
    assert saved["id"] == made.json()["id"]
    assert saved["linked_feature_flag"] == {"id": 7, "key": "beta"}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("sample_rate", "1.5", "Sample rate: Ensure this value is less than or equal to 1."),
        ("sample_rate", "0.125", "Sample rate: Ensure that there are no more than 2 decimal places."),
        ("sample_rate", "half", "Sample rate: A valid number is required."),
        ("match_type", "most", "Match: Input should be 'all' or 'any'"),
    ],
)
def test_bad_controls_are_refused_with_the_apis_reasons(
    ui: TestClient, tenant: Tenant, field: str, value: str, words: str
):
    answer = post(ui, settings_url(tenant, "autocapture", "controls"), {**CONTROLS_FORM, field: value})
    assert answer.status_code == 400
    assert words in answer.text.replace("&#39;", "'")
    assert "The controls were not saved." in answer.text
    assert ">signed_up\npurchase</textarea>" in answer.text  # the rest of the form is kept
    assert api(ui, tenant, "error_tracking/autocapture_controls")["results"] == []


def test_patterns_that_are_not_regexes_are_named(ui: TestClient, tenant: Tenant):
    answer = post(ui, settings_url(tenant, "autocapture", "controls"), {**CONTROLS_FORM, "url_blocklist": "(oops\n/ok"})
    assert answer.status_code == 303
    page = ui.get(settings_url(tenant, "autocapture")).text
    assert "Not valid regexes, so ignored: (oops." in page
    assert "not valid regexes and are ignored: <code>(oops</code>" in page
    assert ignored_patterns([{"url": "(oops"}, {"url": "/ok"}, "[bad", "fine"]) == ["(oops", "[bad"]


def test_saved_controls_apply_to_browser_exceptions(ui: TestClient, tenant: Tenant, database: Database):
    post(ui, settings_url(tenant, "autocapture", "controls"), {"url_blocklist": "/admin", "sample_rate": "1"})

    def browser(url: str) -> dict[str, Any]:
        entry = exception("TypeError", "x is undefined", frames=[])
        entry["mechanism"] = {"type": "onerror", "handled": False, "synthetic": False}
        return {
            "event": "$exception",
            "uuid": str(uuid.uuid4()),
            "properties": {
                "distinct_id": "v",
                "$lib": "web",
                "$session_id": "s1",
                "$current_url": url,
                "$exception_list": [entry],
            },
        }

    post_batch(ui, tenant.project_token, browser("https://shop/admin/x"), browser("https://shop/cart"), path="/e/")
    drain(database)
    with database.session(write=False) as session:
        urls = [e.properties["$current_url"] for e in session.scalars(select(ExceptionEvent))]
    assert urls == ["https://shop/cart"]
    page = text_of(ui.get(settings_url(tenant, "autocapture")).text)
    assert "autocaptured on a blocklisted URL autocapture_url_blocked 1" in page
    assert "https://shop/admin/x is on the autocapture URL blocklist" in page


def test_controls_can_be_removed(ui: TestClient, tenant: Tenant):
    post(ui, settings_url(tenant, "autocapture", "controls"), CONTROLS_FORM)
    answer = post(ui, settings_url(tenant, "autocapture", "controls", "delete"), {})
    assert answer.status_code == 303
    assert api(ui, tenant, "error_tracking/autocapture_controls")["results"] == []
    assert "None are set" in ui.get(settings_url(tenant, "autocapture")).text


def test_controls_form_helpers():
    assert controls_body(ControlsInput())["linked_feature_flag"] is None
    body = controls_body(ControlsInput(flag_key="beta"), {"id": 3, "key": "other"})
    assert body["linked_feature_flag"] == {"key": "beta"}  # another flag's id is not carried over
    assert dropped_reason("sentry_transaction") == "Sentry transaction items (only events are kept)"
    assert dropped_reason("something_new") == "something new"


# --- symbol sets ------------------------------------------------------------------------------


def make_sets(app: FastAPI, database: Database, project_id: int) -> dict[str, SymbolSet]:
    store = app.state.objects
    now = utcnow()
    with database.session(write=True) as session:
        release = Release(project_id=project_id, hash_id=uuid.uuid4().hex, version="4.2.0", project_name="shop")
        session.add(release)
        session.flush()
        hours = timedelta(hours=1)
        sets = {
            "uploaded": SymbolSet(
                id=uuid7(), project_id=project_id, ref="chunk-uploaded", storage_ptr=f"symbolsets/{uuid7()}",
                content_hash="abc", release_id=release.id, last_used=now, created_at=now - 3 * hours,
            ),
            "missing": SymbolSet(id=uuid7(), project_id=project_id, ref="chunk-missing", created_at=now - 2 * hours),
            "failed": SymbolSet(
                id=uuid7(), project_id=project_id, ref="chunk-failed", storage_ptr=f"symbolsets/{uuid7()}",
                content_hash="def", failure_reason="Invalid Source and Map: bad mappings", created_at=now - hours,
            ),
        }  # fmt: skip
        session.add_all(sets.values())
        session.commit()
        for row in sets.values():
            if row.storage_ptr:
                store.put(row.storage_ptr, b"posthog_error_tracking...")
        session.expunge_all()
    return sets


def listed_refs(html: str) -> list[str]:
    return re.findall(r'<td class="ref mono">(?:<a [^>]*>)?([^<]+)', html)


def test_an_uploaded_symbol_set_downloads(ui: TestClient, tenant: Tenant, app: FastAPI, database: Database):
    sets = make_sets(app, database, tenant.project_id)
    base = f"/project/{tenant.project_id}/settings/symbol-sets"
    page = ui.get(base).text
    uploaded, missing = sets["uploaded"].id, sets["missing"].id
    assert f'href="{base}/{uploaded}/download"' in page
    assert f'href="{base}/{missing}/download"' not in page  # nothing to download
    answer = ui.get(f"{base}/{uploaded}/download", follow_redirects=False)
    assert answer.status_code == 303
    # The local store's presigned URL, served by Trapline itself.
    assert ui.get(answer.headers["location"]).content == b"posthog_error_tracking..."
    none = ui.get(f"{base}/{missing}/download")
    assert none.status_code == 404
    assert "no uploaded file" in none.text


def test_symbol_sets_are_listed_with_their_state(ui: TestClient, tenant: Tenant, app: FastAPI, database: Database):
    make_sets(app, database, tenant.project_id)
    page = ui.get(settings_url(tenant, "symbol-sets"))
    assert page.status_code == 200
    assert listed_refs(page.text) == ["chunk-failed", "chunk-missing", "chunk-uploaded"]  # newest first
    text = text_of(page.text)
    assert "failed Invalid Source and Map: bad mappings" in text
    assert "missing Frames asked for this chunk and nothing was uploaded for it." in text
    assert "uploaded" in text and "shop 4.2.0" in text
    # How to upload, with this project's values.
    assert f"export POSTHOG_CLI_ENV_ID={tenant.project_id}" in page.text
    assert "export POSTHOG_CLI_HOST=http://testserver" in page.text


def test_symbol_sets_filter_search_and_order(ui: TestClient, tenant: Tenant, app: FastAPI, database: Database):
    make_sets(app, database, tenant.project_id)
    url = settings_url(tenant, "symbol-sets")
    assert listed_refs(ui.get(url, params={"status": "valid"}).text) == ["chunk-failed", "chunk-uploaded"]
    assert listed_refs(ui.get(url, params={"status": "invalid"}).text) == ["chunk-missing"]
    assert listed_refs(ui.get(url, params={"search": "MISS"}).text) == ["chunk-missing"]
    assert listed_refs(ui.get(url, params={"search": "4.2"}).text) == ["chunk-uploaded"]  # the release's version
    assert listed_refs(ui.get(url, params={"order": "ref"}).text) == ["chunk-failed", "chunk-missing", "chunk-uploaded"]
    assert "No symbol set matches." in ui.get(url, params={"search": "nothing-like-it"}).text
    bad = ui.get(url, params={"status": "broken"})
    assert bad.status_code == 400 and "&#34;broken&#34; is not a valid choice." in bad.text


def test_symbol_sets_are_paged(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=True) as session:
        session.add_all(SymbolSet(id=uuid7(), project_id=tenant.project_id, ref=f"chunk-{i:02}") for i in range(55))
        session.commit()
    first = ui.get(settings_url(tenant, "symbol-sets"), params={"order": "ref"}).text
    assert len(listed_refs(first)) == 50 and listed_refs(first)[0] == "chunk-00"
    assert "1–50 of 55" in first
    older = re.search(r'<a href="([^"]+)" data-key="j">Older', first)
    assert older
    second = ui.get(older[1].replace("&amp;", "&")).text
    assert listed_refs(second) == [f"chunk-{i}" for i in range(50, 55)]
    assert "← Newer" in second


def test_symbol_sets_are_deleted_one_or_several(ui: TestClient, tenant: Tenant, app: FastAPI, database: Database):
    sets = make_sets(app, database, tenant.project_id)
    store = app.state.objects
    uploaded = sets["uploaded"]
    answer = post(ui, settings_url(tenant, "symbol-sets", str(uploaded.id), "delete"), {"status": "valid"})
    assert answer.status_code == 303
    assert answer.headers["location"] == settings_url(tenant, "symbol-sets") + "?status=valid"
    assert store.get(uploaded.storage_ptr) is None  # its file went with it
    assert "1 symbol set deleted" in ui.get(answer.headers["location"]).text

    ids = [str(sets["missing"].id), str(sets["failed"].id), str(uuid.uuid4()), "junk"]
    answer = post(ui, settings_url(tenant, "symbol-sets", "delete"), {"ids": ids})
    assert answer.status_code == 303
    assert api(ui, tenant, "error_tracking/symbol_sets")["count"] == 0
    assert "2 symbol sets deleted" in ui.get(answer.headers["location"]).text
    nothing = post(ui, settings_url(tenant, "symbol-sets", "delete"), {})
    assert "Nothing was deleted" in ui.get(nothing.headers["location"]).text
    assert post(ui, settings_url(tenant, "symbol-sets", str(uploaded.id), "delete"), {}).status_code == 404


def test_other_projects_symbol_sets_are_not_deleted(
    ui: TestClient, tenant: Tenant, other_tenant: Tenant, app: FastAPI, database: Database
):
    theirs = make_sets(app, database, other_tenant.project_id)
    ids = [str(row.id) for row in theirs.values()]
    post(ui, settings_url(tenant, "symbol-sets", "delete"), {"ids": ids})
    assert post(ui, settings_url(tenant, "symbol-sets", ids[0], "delete"), {}).status_code == 404
    assert api(ui, other_tenant, "error_tracking/symbol_sets")["count"] == 3


# --- releases -------------------------------------------------------------------------------


def test_releases_are_listed_with_their_symbol_sets(ui: TestClient, tenant: Tenant, app: FastAPI, database: Database):
    make_sets(app, database, tenant.project_id)
    made = ui.post(
        f"/api/projects/{tenant.project_id}/error_tracking/releases",
        json={"version": "4.3.0", "project": "shop", "hash_id": "h-430", "metadata": {"git": {"commit_id": "f00d"}}},
        headers=tenant.headers(),
    )
    assert made.status_code == 201
    page = ui.get(settings_url(tenant, "releases"))
    assert page.status_code == 200
    text = text_of(page.text)
    assert "4.3.0 f00d shop h-430 0" in text
    assert re.search(r"4\.2\.0 shop [0-9a-f]{16}… 1", text)


def test_a_release_is_created_from_the_form(ui: TestClient, tenant: Tenant):
    answer = post(ui, settings_url(tenant, "releases"), {"version": "1.0.0", "app": "web", "hash_id": ""})
    assert answer.status_code == 303
    [release] = api(ui, tenant, "error_tracking/releases")["results"]
    assert (release["version"], release["project"]) == ("1.0.0", "web")
    assert release["hash_id"] == release["id"]  # no hash id given: the release's own id, as the API does
    assert "Release web 1.0.0 created." in ui.get(settings_url(tenant, "releases")).text


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"version": "", "app": "web"}, "Version is required"),
        ({"version": "1", "app": ""}, "Project is required"),
        ({"version": "1", "app": "web", "hash_id": "x" * 129}, "Hash id length cannot exceed 128 bytes"),
    ],
)
def test_bad_releases_are_refused_with_the_form_kept(ui: TestClient, tenant: Tenant, form: dict, words: str):
    answer = post(ui, settings_url(tenant, "releases"), form)
    assert answer.status_code == 400
    assert words in answer.text and "The release was not created." in answer.text
    assert f'name="version" value="{form["version"]}"' in answer.text
    assert api(ui, tenant, "error_tracking/releases")["count"] == 0


def test_a_hash_id_in_use_is_refused(ui: TestClient, tenant: Tenant):
    post(ui, settings_url(tenant, "releases"), {"version": "1", "app": "web", "hash_id": "same"})
    answer = post(ui, settings_url(tenant, "releases"), {"version": "2", "app": "web", "hash_id": "same"})
    assert answer.status_code == 400 and "Hash id same already in use" in answer.text


def test_a_release_is_deleted_with_its_symbol_sets(ui: TestClient, tenant: Tenant, app: FastAPI, database: Database):
    sets = make_sets(app, database, tenant.project_id)
    release_id = sets["uploaded"].release_id
    page = ui.get(settings_url(tenant, "releases")).text
    assert "Delete release shop 4.2.0 and its 1 symbol set?" in page
    answer = post(ui, settings_url(tenant, "releases", str(release_id), "delete"), {})
    assert answer.status_code == 303
    assert api(ui, tenant, "error_tracking/releases")["count"] == 0
    assert api(ui, tenant, "error_tracking/symbol_sets")["count"] == 2
    assert post(ui, settings_url(tenant, "releases", str(release_id), "delete"), {}).status_code == 404
    assert post(ui, settings_url(tenant, "releases", "nope", "delete"), {}).status_code == 404


def test_a_release_is_edited_from_its_form(ui: TestClient, tenant: Tenant, other_tenant: Tenant):
    post(ui, settings_url(tenant, "releases"), {"version": "1.0.0", "app": "web", "hash_id": "h-1"})
    post(ui, settings_url(tenant, "releases"), {"version": "2.0.0", "app": "web", "hash_id": "h-2"})
    releases = {r["version"]: r for r in api(ui, tenant, "error_tracking/releases")["results"]}
    first = releases["1.0.0"]["id"]
    assert f"/settings/releases/{first}/edit" in ui.get(settings_url(tenant, "releases")).text
    form = ui.get(settings_url(tenant, "releases", first, "edit"))
    assert form.status_code == 200
    assert 'name="version" value="1.0.0"' in form.text and 'name="hash_id" value="h-1"' in form.text

    answer = post(
        ui, settings_url(tenant, "releases", first, "edit"), {"version": "1.0.1", "app": "shop", "hash_id": "h-9"}
    )
    assert answer.status_code == 303
    shown = ui.get(f"/api/projects/{tenant.project_id}/error_tracking/releases/{first}", headers=tenant.headers())
    assert {k: shown.json()[k] for k in ("version", "project", "hash_id")} == {
        "version": "1.0.1",
        "project": "shop",
        "hash_id": "h-9",
    }
    assert "Release shop 1.0.1 saved." in ui.get(settings_url(tenant, "releases")).text

    # Refusals keep what was typed and change nothing.
    taken = post(
        ui, settings_url(tenant, "releases", first, "edit"), {"version": "1.0.2", "app": "shop", "hash_id": "h-2"}
    )
    assert taken.status_code == 400
    assert "Hash id h-2 already in use" in taken.text and 'name="version" value="1.0.2"' in taken.text
    emptied = post(ui, settings_url(tenant, "releases", first, "edit"), {"version": "", "app": "shop", "hash_id": ""})
    assert emptied.status_code == 400 and "needs a version and an app name" in emptied.text
    too_long = post(
        ui, settings_url(tenant, "releases", first, "edit"), {"version": "1", "app": "a", "hash_id": "x" * 129}
    )
    assert too_long.status_code == 400 and "128" in too_long.text
    again = ui.get(f"/api/projects/{tenant.project_id}/error_tracking/releases/{first}", headers=tenant.headers())
    assert again.json()["version"] == "1.0.1" and again.json()["hash_id"] == "h-9"

    # Another project's release, or no release, is not found.
    other = settings_url(other_tenant, "releases", first, "edit")
    assert ui.get(other).status_code == 404
    assert ui.get(settings_url(tenant, "releases", "nope", "edit")).status_code == 404
    assert (
        post(ui, settings_url(tenant, "releases", str(uuid.uuid4()), "edit"), {"version": "1", "app": "a"}).status_code
        == 404
    )


# --- SDK setup ---------------------------------------------------------------------------------


def test_the_sdk_page_has_the_projects_token_host_and_dsn(ui: TestClient, tenant: Tenant, database: Database):
    with database.session(write=False) as session:
        project = session.get(Project, tenant.project_id)
        assert project is not None
        sentry_dsn = dsn("http://testserver", project.sentry_public_key, project.id)
    page = ui.get(settings_url(tenant, "sdk"))
    assert page.status_code == 200
    html = page.text.replace("&#34;", '"')
    assert f'posthog.init("{tenant.project_token}", {{ api_host: "http://testserver" }})' in html
    assert f'Posthog("{tenant.project_token}", host="http://testserver", enable_exception_autocapture=True)' in html
    node = f'new PostHog("{tenant.project_token}", {{\n  host: "http://testserver",\n  enableExceptionAutocapture: true'
    assert node in html
    assert f'sentry_sdk.init(dsn="{sentry_dsn}")' in html
    assert f'Sentry.init({{ dsn: "{sentry_dsn}" }})' in html
    assert f"export POSTHOG_CLI_ENV_ID={tenant.project_id}" in html and "POSTHOG_CLI_TOKEN=phx_" in html
    assert 'src="http://testserver/static/array.js"' in html and "TRAPLINE_POSTHOG_JS_DIST" in html
    # Every snippet has a copy button holding exactly its text.
    assert html.count("data-copy=") >= 2 * 7
    assert f'data-copy="{sentry_dsn}"' in html


# --- access ------------------------------------------------------------------------------------

PAGES = ["autocapture", "symbol-sets", "releases", "sdk"]
POSTS = [
    ("autocapture", "exceptions"),
    ("autocapture", "controls"),
    ("autocapture", "controls", "delete"),
    ("symbol-sets", "delete"),
    ("releases",),
]


@pytest.mark.parametrize("page", PAGES)
def test_pages_of_other_organizations_do_not_exist(ui: TestClient, tenant: Tenant, other_tenant: Tenant, page: str):
    assert ui.get(settings_url(tenant, page)).status_code == 200
    answer = ui.get(settings_url(other_tenant, page))
    assert answer.status_code == 404 and "no such project" in answer.text


@pytest.mark.parametrize("parts", POSTS)
def test_forms_need_their_csrf_token(ui: TestClient, tenant: Tenant, parts: tuple[str, ...]):
    answer = ui.post(settings_url(tenant, *parts), data={"enabled": "false", "version": "1", "app": "x"})
    assert answer.status_code == 403
    assert api(ui, tenant, "")["autocapture_exceptions_opt_in"] is True
    assert api(ui, tenant, "error_tracking/releases")["count"] == 0


@pytest.mark.parametrize("parts", POSTS)
def test_forms_for_other_organizations_are_not_found(
    ui: TestClient, tenant: Tenant, other_tenant: Tenant, parts: tuple[str, ...]
):
    answer = post(ui, settings_url(other_tenant, *parts), {"enabled": "false", "version": "1", "app": "x"})
    assert answer.status_code == 404


def test_settings_pages_send_strangers_to_sign_in(client: TestClient, tenant: Tenant):
    for page in PAGES:
        answer = client.get(settings_url(tenant, page), follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?")
