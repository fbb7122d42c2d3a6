"""JavaScript frames resolved with symbol sets, through the whole pipeline.

The fixture bundle (fixtures/shop.min.js) is esbuild's minified output of fixtures/shop.js;
node reports its throw at 1:528 (in ``computeTotal``, minified ``s``) called from 1:585
(``checkout``, minified ``a``).
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, select

from tests.capture import exception, exception_event, post_batch
from tests.factories import Tenant
from tests.search.support import assert_summaries_sound
from tests.volumes.support import assert_rollups_match
from trapline.alerts.models import AlertDelivery
from trapline.alerts.service import AlertInput, create_alert
from trapline.db.engine import Database
from trapline.events.models import ExceptionEvent
from trapline.issues.models import IssueFingerprint
from trapline.pipeline.reprocess import reprocess
from trapline.releases.models import Release
from trapline.settings import Settings
from trapline.symbols.container import Kind, pack, pack_source_and_map
from trapline.symbols.models import StackFrame, SymbolSet
from trapline.symbols.resolver import SymbolResolver
from trapline.symbols.service import delete_symbol_sets
from trapline.worker import Worker

FIXTURES = Path(__file__).parent / "fixtures"
CHUNK = "0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
URL = "https://shop.example/assets/shop.min.js"


class Blobs(dict[str, bytes]):
    """An object store with only what resolution reads."""

    def get(self, key: str, default: Any = None) -> Any:  # the ObjectStore.get signature
        return super().get(key, default)

    def delete(self, key: str) -> None:
        self.pop(key, None)


def container() -> bytes:
    return pack_source_and_map((FIXTURES / "shop.min.js").read_bytes(), (FIXTURES / "shop.min.js.map").read_bytes())


def web_frame(function: str, colno: int, *, chunk_id: str | None = CHUNK, lineno: int = 1) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "platform": "web:javascript",
        "filename": URL,
        "function": function,
        "lineno": lineno,
        "colno": colno,
        "in_app": True,
    }
    if chunk_id is not None:
        frame["chunk_id"] = chunk_id
    return frame


def js_event(*frames: dict[str, Any], type_: str = "Error") -> dict[str, Any]:
    # posthog-js order: oldest call first, throw site last.
    frames = frames or (web_frame("a", 585), web_frame("s", 528))
    return exception_event(exception(type_, "too expensive", frames=list(frames)), **{"$lib": "web"})


def upload(database: Database, blobs: Blobs, project_id: int, *, ref: str = CHUNK, data: bytes | None = None,
           release_id: uuid.UUID | None = None) -> uuid.UUID:  # fmt: skip
    key = f"symbolsets/{uuid.uuid4()}"
    blobs[key] = container() if data is None else data
    with database.session(write=True) as session:
        row = session.scalar(select(SymbolSet).where(SymbolSet.project_id == project_id, SymbolSet.ref == ref))
        if row is None:
            row = SymbolSet(project_id=project_id, ref=ref)
            session.add(row)
        row.storage_ptr, row.content_hash, row.failure_reason, row.release_id = key, "hash", None, release_id
        session.flush()
        session.execute(StackFrame.__table__.delete().where(StackFrame.symbol_set_id == row.id))
        session.commit()
        return row.id


@pytest.fixture
def blobs() -> Blobs:
    return Blobs()


@pytest.fixture
def process(database: Database, blobs: Blobs) -> Any:
    resolver = SymbolResolver(database, blobs)
    return lambda: Worker(database, resolver=resolver).drain()


def stored(database: Database) -> list[ExceptionEvent]:
    with database.session(write=False) as session:
        return list(session.scalars(select(ExceptionEvent).order_by(ExceptionEvent.id)))


def frames_of(event: ExceptionEvent) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = event.properties["$exception_list"][0]["stacktrace"]["frames"]
    return frames


def test_minified_frames_resolve_to_the_original_source(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event())
    process()
    [event] = stored(database)
    checkout, compute = frames_of(event)
    assert (compute["source"], compute["resolved_name"], compute["line"], compute["column"]) == (
        "shop.js",
        "computeTotal",
        7,
        11,
    )
    assert (checkout["resolved_name"], checkout["line"]) == ("checkout", 13)
    assert compute["mangled_name"] == "s"
    assert compute["resolved"] is True and compute["in_app"] is True and "resolve_failure" not in compute
    # The fingerprint is built from the resolved frames: type, then source + name of each.
    expected = hashlib.sha512(b"Error" + b"shop.js" + b"checkout" + b"shop.js" + b"computeTotal").hexdigest()
    assert event.fingerprint == expected
    assert event.properties["$exception_functions"] == ["checkout", "computeTotal"]
    assert event.properties["$exception_sources"] == ["shop.js"]


@pytest.mark.parametrize("compress", [True, False])
def test_a_version_2_container_resolves_as_version_1_does(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any, compress: bool
):
    # What posthog-cli 0.7.3 and later upload: the same payload behind a version 2 header.
    upload(database, blobs, tenant.project_id, data=pack(Kind.SOURCE_AND_MAP, container()[30:], compress=compress))
    post_batch(client, tenant.project_token, js_event())
    process()
    checkout, compute = frames_of(stored(database)[0])
    assert (compute["source"], compute["resolved_name"], compute["line"]) == ("shop.js", "computeTotal", 7)
    assert checkout["resolved_name"] == "checkout"


def test_resolved_frames_are_cached_with_their_source_context(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event())
    process()
    with database.session(write=False) as session:
        rows = {row.contents["resolved_name"]: row for row in session.scalars(select(StackFrame))}
    compute = rows["computeTotal"]
    assert compute.resolved is True
    assert compute.context is not None
    assert compute.context["line"] == {"number": 7, "line": '    throw new Error("too expensive");'}
    assert compute.context["before"][0] == {"number": 6, "line": "  if (total > 100) {"}
    assert compute.context["after"][0]["number"] == 8
    # The map is not needed again: a second event resolves from the stack frame table.
    blobs.clear()
    post_batch(client, tenant.project_token, js_event())
    process()
    assert [f["resolved_name"] for f in frames_of(stored(database)[1])] == ["checkout", "computeTotal"]


def test_a_chunk_nobody_uploaded_fails_cleanly_and_an_upload_fixes_the_next_events(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    post_batch(client, tenant.project_token, js_event())
    process()
    [early] = stored(database)
    compute = frames_of(early)[1]
    assert compute["resolve_failure"] == f"No sourcemap uploaded for chunk id: {CHUNK}"
    assert compute["resolved"] is False and "resolved_name" not in compute
    with database.session(write=False) as session:
        placeholder = session.scalar(select(SymbolSet).where(SymbolSet.ref == CHUNK))
        assert placeholder is not None and placeholder.storage_ptr is None
        failed = session.scalars(select(StackFrame).where(StackFrame.symbol_set_id == placeholder.id)).all()
        assert {row.contents["mangled_name"] for row in failed} == {"a", "s"}
    # The event keeps its frames' raw form, to be resolved again once the map is there.
    assert {raw["function"] for raw in (early.unresolved_frames or {}).values()} == {"a", "s"}
    assert set(early.unresolved_frames or {}) == {f["raw_id"] for f in frames_of(early)}

    upload(database, blobs, tenant.project_id)  # the upload of that chunk clears its cached frames
    post_batch(client, tenant.project_token, js_event())
    process()
    later = stored(database)[1]
    assert [f["resolved_name"] for f in frames_of(later)] == ["checkout", "computeTotal"]
    assert later.unresolved_frames is None
    assert later.fingerprint != early.fingerprint


def test_a_chunk_deleted_and_uploaded_again_resolves_with_the_new_map(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event())
    process()  # the resolver parses the first map, and its frames are stored
    with database.session(write=True) as session:
        rows = session.scalars(select(SymbolSet).where(SymbolSet.project_id == tenant.project_id)).all()
        delete_symbol_sets(session, blobs, rows)  # type: ignore[arg-type]
    renamed = (FIXTURES / "shop.min.js.map").read_text().replace('"sources": ["shop.js"]', '"sources": ["v2.js"]')
    data = pack_source_and_map((FIXTURES / "shop.min.js").read_bytes(), renamed.encode())
    upload(database, blobs, tenant.project_id, data=data)  # a new set for the same chunk
    post_batch(client, tenant.project_token, js_event())
    process()
    first, second = stored(database)
    assert [f["source"] for f in frames_of(first)] == ["shop.js", "shop.js"]
    assert [f["source"] for f in frames_of(second)] == ["v2.js", "v2.js"]
    with database.session(write=False) as session:
        sources = {row.contents["source"] for row in session.scalars(select(StackFrame))}
    assert sources == {"v2.js"}  # the old resolution is replaced, not kept beside


def test_a_stack_resolved_before_its_stored_frames_are_replaced_resolves_anew_later_in_the_batch(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    # Web frames are identified without their chunk id: the same positions under two chunks
    # are one stack frame. Stored first under a chunk nobody uploaded, they are outdated once
    # an event of the uploaded chunk comes; a batch resolves each repeated stack once, and
    # must not keep answering the first event's stack with the frames it then replaced.
    other = str(uuid.uuid4())
    frames = (web_frame("a", 585, chunk_id=other), web_frame("s", 528, chunk_id=other))
    post_batch(client, tenant.project_token, js_event(*frames))
    process()
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event(*frames), js_event(), js_event(*frames))  # one batch
    process()
    _, before, fresh, after = stored(database)
    assert [f.get("resolve_failure") for f in frames_of(before)] == [f"No sourcemap uploaded for chunk id: {other}"] * 2
    assert [f["resolved_name"] for f in frames_of(fresh)] == ["checkout", "computeTotal"]
    assert frames_of(after) == frames_of(fresh)


def test_an_unreadable_symbol_set_is_marked_failed_and_not_retried(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    set_id = upload(database, blobs, tenant.project_id, data=b"not a container")
    post_batch(client, tenant.project_token, js_event())
    process()
    compute = frames_of(stored(database)[0])[1]
    assert compute["resolve_failure"].startswith("Invalid Source and Map: not a symbol set")
    with database.session(write=False) as session:
        reason = session.get_one(SymbolSet, set_id).failure_reason
    assert reason is not None and "posthog_error_tracking header" in reason


def test_a_map_in_a_container_of_another_type_says_so(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    hermes = b"posthog_error_tracking" + (1).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"\0" * 8
    upload(database, blobs, tenant.project_id, data=hermes)
    post_batch(client, tenant.project_token, js_event())
    process()
    failure = frames_of(stored(database)[0])[1]["resolve_failure"]
    assert "the symbol set is a Hermes map, not a source and map" in failure


def test_a_position_outside_the_map_is_token_not_found(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event(web_frame("x", 5, lineno=40)))
    process()
    [frame] = frames_of(stored(database)[0])
    assert frame["resolve_failure"] == "Token not found for frame: x:40:5"


def test_frames_without_a_chunk_id_or_position_pass_through(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    upload(database, blobs, tenant.project_id)
    no_chunk = web_frame("s", 528, chunk_id=None)
    no_position = {k: v for k, v in web_frame("native", 1).items() if k not in ("lineno", "colno")}
    post_batch(client, tenant.project_token, js_event(no_chunk, no_position))
    process()
    first, second = frames_of(stored(database)[0])
    assert first["resolve_failure"].startswith("Could not find sourcemap for source url")
    assert second["resolved_name"] == "native" and "resolve_failure" not in second


def test_node_frames_resolve_by_chunk_id(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    upload(database, blobs, tenant.project_id)
    node = {
        "platform": "node:javascript",
        "filename": "/srv/app/dist/shop.min.js",
        "function": "s",
        "lineno": 1,
        "colno": 528,
        "in_app": True,
        "chunk_id": CHUNK,
    }
    post_batch(client, tenant.project_token, js_event(node))
    process()
    [frame] = frames_of(stored(database)[0])
    assert (frame["source"], frame["resolved_name"], frame["line"]) == ("shop.js", "computeTotal", 7)


def test_the_symbol_sets_release_goes_into_the_event(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    with database.session(write=True) as session:
        release = Release(project_id=tenant.project_id, hash_id="abc123", version="1.2.0", project_name="shop")
        session.add(release)
        session.commit()
        release_id = release.id
    upload(database, blobs, tenant.project_id, release_id=release_id)
    post_batch(client, tenant.project_token, js_event())
    process()
    releases = stored(database)[0].properties["$exception_releases"]
    assert list(releases) == ["abc123"]
    assert releases["abc123"]["version"] == "1.2.0"
    assert releases["abc123"]["project"] == "shop"
    assert releases["abc123"]["id"] == str(release_id)


def test_python_frames_are_kept_in_the_frame_table_with_context(
    client: TestClient, tenant: Tenant, database: Database, process: Any
):
    python = {
        "platform": "python",
        "filename": "app.py",
        "function": "handle",
        "module": "app",
        "lineno": 9,
        "context_line": "    return 1 / 0",
        "pre_context": ["def handle():"],
        "post_context": [],
    }
    post_batch(client, tenant.project_token, exception_event(exception("ZeroDivisionError", frames=[python])))
    process()
    with database.session(write=False) as session:
        [row] = session.scalars(select(StackFrame))
    assert row.symbol_set_id is None
    assert row.context == {
        "before": [{"number": 8, "line": "def handle():"}],
        "line": {"number": 9, "line": "    return 1 / 0"},
        "after": [],
    }


def test_new_frames_are_inserted_in_one_order_whatever_order_the_batch_met_them(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    # Two workers inserting the same new frames in different orders wait on each other's index
    # entries: PostgreSQL answers one of them with a deadlock. Key order is the one lock order.
    upload(database, blobs, tenant.project_id)
    python = [{"platform": "python", "filename": f"app{n}.py", "function": f"f{n}", "lineno": n} for n in range(8)]
    post_batch(client, tenant.project_token, exception_event(exception("ValueError", frames=python)), js_event())
    inserted: list[tuple[str, int]] = []

    def note(_conn: Any, clause: Any, multiparams: Any, params: Any, _options: Any) -> None:
        if getattr(clause, "table", None) is StackFrame.__table__ and clause.is_insert:
            inserted.extend((row["raw_id"], row["part"]) for row in multiparams or [params])

    event.listen(database.engine, "before_execute", note)
    try:
        process()
    finally:
        event.remove(database.engine, "before_execute", note)
    assert len(inserted) == 10
    assert inserted == sorted(inserted)


def test_events_sent_before_the_upload_are_resolved_again_by_reprocess(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    post_batch(client, tenant.project_token, js_event(), js_event())
    process()
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event())  # after the upload: resolved at once
    process()
    early, _, late = stored(database)
    assert early.fingerprint != late.fingerprint

    result = reprocess(database, SymbolResolver(database, blobs), tenant.project_id)
    assert (result.examined, result.improved, result.regrouped) == (2, 2, 2)
    events = stored(database)
    assert {event.fingerprint for event in events} == {late.fingerprint}
    assert {event.issue_id for event in events} == {late.issue_id}
    assert all(event.unresolved_frames is None for event in events)
    assert [f["resolved_name"] for f in frames_of(events[0])] == ["checkout", "computeTotal"]
    assert events[0].properties["$exception_issue_id"] == str(late.issue_id)
    with database.session(write=False) as session:
        totals = {fp.fingerprint: fp.occurrences for fp in session.scalars(select(IssueFingerprint))}
    assert totals == {early.fingerprint: 0, late.fingerprint: 3}
    assert_rollups_match(database)  # the moved events' hours and days moved with them
    assert_summaries_sound(database)  # and the searches find them by their resolved names
    # Nothing left to do: a second run changes nothing.
    assert reprocess(database, SymbolResolver(database, blobs), tenant.project_id).improved == 0


def test_reprocess_moves_totals_and_keeps_what_retention_deleted(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    post_batch(client, tenant.project_token, js_event(), js_event(), js_event())
    process()
    upload(database, blobs, tenant.project_id)
    post_batch(client, tenant.project_token, js_event(), js_event())
    process()
    first, *_, late = stored(database)
    with database.session(write=True) as session:  # as retention does: the oldest event goes
        session.execute(delete(ExceptionEvent).where(ExceptionEvent.id == first.id))
        session.commit()
    result = reprocess(database, SymbolResolver(database, blobs), tenant.project_id)
    assert (result.improved, result.regrouped) == (2, 2)
    with database.session(write=False) as session:
        totals = {fp.fingerprint: fp.occurrences for fp in session.scalars(select(IssueFingerprint))}
        seen = session.scalars(
            select(IssueFingerprint.last_seen).where(IssueFingerprint.fingerprint == late.fingerprint)
        )
        assert seen.one() == max(event.timestamp for event in stored(database))
    # All-time: the deleted event is still counted, on the fingerprint it was counted on.
    assert totals == {first.fingerprint: 1, late.fingerprint: 4}


def test_issues_that_reprocessing_creates_fire_no_alerts(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any, settings: Settings
):
    post_batch(client, tenant.project_token, js_event())
    process()
    with database.session(write=True) as session:
        for trigger in ("issue_created", "issue_reopened", "issue_spiking"):
            alert = AlertInput(name=trigger, trigger={"type": trigger}, destination={"type": "webhook",
                               "url": "https://hooks.example.com/x"})  # fmt: skip
            create_alert(session, tenant.project_id, alert, settings)
    upload(database, blobs, tenant.project_id)
    result = reprocess(database, SymbolResolver(database, blobs), tenant.project_id)
    assert result.regrouped == 1  # into an issue of its own, made by reprocessing
    with database.session(write=False) as session:
        assert len(list(session.scalars(select(IssueFingerprint)))) == 2
        assert list(session.scalars(select(AlertDelivery))) == []


def test_reprocess_without_the_symbols_leaves_events_alone(
    client: TestClient, tenant: Tenant, database: Database, blobs: Blobs, process: Any
):
    post_batch(client, tenant.project_token, js_event())
    process()
    [before] = stored(database)
    result = reprocess(database, SymbolResolver(database, blobs), tenant.project_id)
    assert (result.examined, result.improved) == (1, 0)
    [after] = stored(database)
    assert (after.fingerprint, after.properties) == (before.fingerprint, before.properties)
