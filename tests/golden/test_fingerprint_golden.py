"""Golden tests for grouping: every input under every registered grouping version, as text.

A snapshot diff is a data migration, not a test to make green. Fingerprints are the keys
issues are found by: when one changes, new events stop matching the fingerprint stored for
their issue and open a new issue instead, which splits every existing issue the change
touches. So a diff is acceptable only with a new grouping version (the old version's
snapshots staying as they are), or with a written reason why no stored fingerprint can
change. Rewrite the snapshots with::

    TRAPLINE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden

Inputs are ``inputs/<name>.json`` = ``{"description": ..., "properties": {...}}``, the
properties as SDKs send them (the ``posthog-*`` ones are copied from captured SDK requests).
Snapshots are ``snapshots/<grouping version>/<name>.txt``: the fingerprint, its record, the
computed search properties, the resolved exception list and the frame contexts, or the
rejection text. Exception ids are random UUIDv7s in production; here a counter hands out
``00000000-0000-7000-8000-00000000000N`` so that snapshots are stable.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.golden.conftest import UPDATE_GOLDEN
from trapline.pipeline.exceptions import (
    Rejected,
    normalize_exception_properties,
    resolve_exception_list,
    search_properties,
)
from trapline.pipeline.fingerprint import GROUPING_VERSIONS, generate_fingerprint, manual

HERE = Path(__file__).parent
INPUTS = sorted(path.stem for path in (HERE / "inputs").glob("*.json"))
EVENT_UUID = "01890000-0000-7000-8000-00000000e7e7"


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"00000000-0000-7000-8000-{next(numbers):012d}"


def dump(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def render(name: str, version: str) -> str:
    data = json.loads((HERE / "inputs" / f"{name}.json").read_text(encoding="utf-8"))
    out = [f"# {name}.json under grouping version {version}"]
    out += textwrap.wrap(data["description"], width=100, initial_indent="# ", subsequent_indent="# ")
    result = normalize_exception_properties(data["properties"], event_uuid=EVENT_UUID, new_id=counter_ids())
    if isinstance(result, Rejected):
        out += ["", f"rejected: {result.error}"]
        return "\n".join(out) + "\n"
    resolved = resolve_exception_list(result.exception_list)
    generated = generate_fingerprint(resolved.exception_list, version)
    final = manual(result.fingerprint) if result.fingerprint is not None else generated
    out += ["", f"fingerprint: {final.value}"]
    if result.fingerprint is not None:
        out.append(f"proposed fingerprint: {generated.value}")
    out += ["", "record:", dump(final.record)]
    if result.fingerprint is not None:
        out += ["", "proposed record:", dump(generated.record)]
    out += ["", f"$exception_handled: {dump(result.handled)}"]
    out += ["", "search properties:", dump(search_properties(resolved.exception_list))]
    out += ["", "exception list:", dump(resolved.exception_list)]
    out += ["", "contexts:", dump(resolved.contexts)]
    return "\n".join(out) + "\n"


CASES = [pytest.param(name, version, id=f"{version}/{name}") for version in GROUPING_VERSIONS for name in INPUTS]


@pytest.mark.parametrize(("name", "version"), CASES)
def test_snapshot(name: str, version: str) -> None:
    snapshot = HERE / "snapshots" / version / f"{name}.txt"
    rendered = render(name, version)
    if UPDATE_GOLDEN:
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(rendered, encoding="utf-8")
        return
    assert snapshot.exists(), f"no snapshot {snapshot}; run with TRAPLINE_UPDATE_GOLDEN=1 and review it"
    assert rendered == snapshot.read_text(encoding="utf-8"), (
        f"{snapshot.name} changed. Changed fingerprints split issues: see this module's docstring."
    )


def test_every_snapshot_has_an_input_and_a_version() -> None:
    stale = [
        str(path.relative_to(HERE))
        for path in (HERE / "snapshots").glob("*/*.txt")
        if path.parent.name not in GROUPING_VERSIONS or path.stem not in INPUTS
    ]
    assert not stale, f"snapshots without an input or a registered version: {stale}"


def test_the_inputs_cover_every_captured_sdk_payload() -> None:
    payloads = Path("/work/shared/reference/payloads")
    if not payloads.is_dir():
        pytest.skip("the reference payloads are not on this machine")
    for path in sorted(payloads.glob("posthog-*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))["body_decoded"]
        events = [e for e in body.get("batch") or [body] if e.get("event") == "$exception"]
        for index, event in enumerate(events):
            name = path.stem if len(events) == 1 else f"{path.stem}__{index}"
            assert name in INPUTS, f"no golden input for {path.name} event {index}"
            stored = json.loads((HERE / "inputs" / f"{name}.json").read_text(encoding="utf-8"))
            assert stored["properties"] == event["properties"]
