"""Capture bodies shaped like posthog-python 7.91.1's ``capture_exception`` (see shared/reference),
and Sentry envelopes shaped like sentry-sdk 2.75.0's, one event each.

Twenty exception kinds (type, raising function, module) give twenty issues however many events
are sent; each event gets its own uuid (the pipeline deduplicates by uuid) and one of a few
thousand distinct ids. Bodies are kept as JSON text split around those two slots, so that a
load generator (wrk's Lua, or the Python fallback) fills them in without re-encoding JSON.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DISTINCT_IDS",
    "KINDS",
    "SLOT_DISTINCT_ID",
    "SLOT_UUID",
    "BodyFactory",
    "BodyTemplate",
    "Template",
    "body_template",
    "sentry_body_template",
]

SLOT_UUID = "uuid"
SLOT_DISTINCT_ID = "distinct_id"
_MARK = {SLOT_UUID: "@@SLOT-UUID@@", SLOT_DISTINCT_ID: "@@SLOT-DISTINCT-ID@@"}
DISTINCT_IDS = 5000

# (exception type, module raising it, function raising it, handler that called it)
KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("ValueError", "shop.orders", "parse_quantity", "create_order"),
    ("KeyError", "shop.cart", "line_for_sku", "update_cart"),
    ("TypeError", "shop.pricing", "apply_discount", "checkout"),
    ("ZeroDivisionError", "shop.reports", "average_basket", "daily_report"),
    ("AttributeError", "shop.users", "display_name", "profile"),
    ("IndexError", "shop.search", "first_hit", "search"),
    ("RuntimeError", "shop.jobs", "run_step", "nightly_job"),
    ("PermissionError", "shop.files", "open_invoice", "download_invoice"),
    ("TimeoutError", "shop.payments", "charge_card", "pay"),
    ("ConnectionError", "shop.shipping", "quote_rates", "shipping_options"),
    ("UnicodeDecodeError", "shop.imports", "read_csv_row", "import_catalog"),
    ("FileNotFoundError", "shop.media", "load_thumbnail", "product_page"),
    ("NotImplementedError", "shop.tax", "rate_for_region", "tax_preview"),
    ("AssertionError", "shop.inventory", "reserve_stock", "reserve"),
    ("OverflowError", "shop.loyalty", "points_for_total", "loyalty_summary"),
    ("LookupError", "shop.i18n", "translation", "render_email"),
    ("OSError", "shop.storage", "write_export", "export_orders"),
    ("ValidationError", "shop.forms", "clean_address", "save_address"),
    ("IntegrityError", "shop.db", "insert_customer", "signup"),
    ("JSONDecodeError", "shop.webhooks", "parse_payload", "stripe_webhook"),
)


@dataclass(frozen=True)
class Template:
    """One event's JSON text: ``parts[0] slot[0] parts[1] slot[1] ... parts[-1]``."""

    parts: tuple[str, ...]
    slots: tuple[str, ...]

    def fill(self, values: dict[str, str]) -> str:
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(values[slot])
            out.append(part)
        return "".join(out)


@dataclass(frozen=True)
class BodyTemplate:
    """A whole request body: ``prefix`` + events joined by ``separator`` + ``suffix``, posted
    to ``path`` with ``headers`` (besides Content-Type: application/json)."""

    prefix: str
    separator: str
    suffix: str
    events: tuple[Template, ...]
    events_per_request: int
    path: str = "/batch/"
    headers: tuple[tuple[str, str], ...] = ()


def body_template(api_key: str, events_per_request: int) -> BodyTemplate:
    """posthog-python's batch body (json.dumps defaults), split around the batch's events."""
    now = datetime.now(UTC)
    marker = "@@EVENTS@@"
    envelope = json.dumps(
        {"batch": [marker], "historical_migration": False, "sent_at": now.isoformat(), "api_key": api_key}
    )
    prefix, suffix = envelope.split(json.dumps(marker))
    timestamp = (now - timedelta(milliseconds=3)).isoformat()
    events = tuple(_split(json.dumps(_event(n, kind, timestamp))) for n, kind in enumerate(KINDS))
    return BodyTemplate(prefix, ", ", suffix, events, events_per_request)


def sentry_body_template(project_id: int, public_key: str) -> BodyTemplate:
    """sentry-sdk's envelope: header line, item header, the event; one event per request."""
    now = datetime.now(UTC)
    prefix = json.dumps({"sent_at": now.isoformat().replace("+00:00", "Z")}) + "\n" + json.dumps({"type": "event"})
    timestamp = (now - timedelta(milliseconds=3)).isoformat().replace("+00:00", "Z")
    events = tuple(_split(json.dumps(_sentry_event(n, kind, timestamp))) for n, kind in enumerate(KINDS))
    auth = f"Sentry sentry_key={public_key}, sentry_version=7, sentry_client=sentry.python/2.75.0"
    return BodyTemplate(
        prefix + "\n", "", "\n", events, 1, path=f"/api/{project_id}/envelope/", headers=(("X-Sentry-Auth", auth),)
    )


class BodyFactory:
    """Bodies for the Python load generator; wrk's Lua script does the same from the template."""

    def __init__(self, template: BodyTemplate, stream: int) -> None:
        self._template = template
        self.headers = template.headers
        self._stream = stream
        self._counter = 0
        self._random = random.Random(stream)

    def next_body(self) -> bytes:
        t = self._template
        events = [self._one() for _ in range(t.events_per_request)]
        return (t.prefix + t.separator.join(events) + t.suffix).encode()

    def _one(self) -> str:
        self._counter += 1
        rnd = self._random
        uuid = (
            f"{self._stream:08x}-{rnd.getrandbits(16):04x}-4{rnd.getrandbits(12):03x}"
            f"-{0x8000 | rnd.getrandbits(14):04x}-{self._counter:012x}"
        )
        template = self._template.events[rnd.randrange(len(self._template.events))]
        return template.fill({SLOT_UUID: uuid, SLOT_DISTINCT_ID: f"user-{rnd.randrange(DISTINCT_IDS)}"})


def _split(text: str) -> Template:
    parts: list[str] = []
    slots: list[str] = []
    rest = text
    while True:
        found = [(rest.find(mark), slot) for slot, mark in _MARK.items() if mark in rest]
        if not found:
            parts.append(rest)
            return Template(tuple(parts), tuple(slots))
        index, slot = min(found)
        parts.append(rest[:index])
        slots.append(slot)
        rest = rest[index + len(_MARK[slot]) :]


def _event(n: int, kind: tuple[str, str, str, str], timestamp: str) -> dict[str, Any]:
    exc_type, module, function, _ = kind
    exception_list = [_exception(0, exc_type, module, f"{function} failed for input #{n}", _frames(kind))]
    if n % 4 == 0:  # a quarter carry a chained cause, as `raise ... from e` produces
        exception_list.append(_cause(module, function))
    return {
        "properties": {
            "$exception_list": exception_list,
            "$exception_level": "error",
            "order_id": 7,
            "$python_runtime": "CPython",
            "$python_version": "3.11.7",
            "$os": "Linux",
            "$os_version": "12",
            "$os_distro": "Debian GNU/Linux",
            "$lib": "posthog-python",
            "$lib_version": "7.91.1",
            "$geoip_disable": True,
            "$is_server": True,
        },
        "timestamp": timestamp,
        "distinct_id": _MARK[SLOT_DISTINCT_ID],
        "event": "$exception",
        "uuid": _MARK[SLOT_UUID],
    }


def _exception(
    exception_id: int, exc_type: str, module: str, value: str, frames: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "mechanism": {"exception_id": exception_id, "type": "generic", "handled": True, "synthetic": False},
        "module": module,
        "type": exc_type,
        "value": value,
        "stacktrace": {"frames": frames, "type": "raw"},
    }


def _cause(module: str, function: str) -> dict[str, Any]:
    cause = _exception(1, "ZeroDivisionError", "builtins", "division by zero", [_frame(module, function, 31)])
    cause["module"] = None
    cause["mechanism"] = {
        "exception_id": 1,
        "source": "cause",
        "parent_id": 0,
        "type": "chained",
        "synthetic": False,
    }
    return cause


def _frames(kind: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    _, module, function, handler = kind
    return [
        _frame("shop.server", "dispatch", 88),
        _frame(module.replace(".", ".views_", 1), handler, 42),
        _frame(module, function, 17),
    ]


def _frame(module: str, function: str, lineno: int) -> dict[str, Any]:
    path = module.replace(".", "/") + ".py"
    source = [f"    line_{lineno + offset} = step_{offset + 5}(payload)" for offset in range(-5, 6)]
    source[5] = f"    result = {function}(request.payload)"
    return {
        "platform": "python",
        "filename": path,
        "abs_path": f"/srv/app/{path}",
        "function": function,
        "module": module,
        "lineno": lineno,
        "pre_context": source[:5],
        "context_line": source[5],
        "post_context": source[6:],
        "in_app": True,
    }


def _sentry_event(n: int, kind: tuple[str, str, str, str], timestamp: str) -> dict[str, Any]:
    """The same exception as ``_event``'s, as sentry-sdk describes it (root cause first)."""
    posthog = _event(n, kind, timestamp)
    values = []
    for entry in reversed(posthog["properties"]["$exception_list"]):
        frames = [
            {key: value for key, value in frame.items() if key != "platform"} | {"vars": {"payload": "{'qty': 0}"}}
            for frame in entry["stacktrace"]["frames"]
        ]
        values.append(
            {
                "mechanism": {"type": "generic", "handled": True},
                "module": entry["module"],
                "type": entry["type"],
                "value": entry["value"],
                "stacktrace": {"frames": frames},
            }
        )
    return {
        "level": "error",
        "exception": {"values": values},
        "event_id": _MARK[SLOT_UUID],
        "timestamp": timestamp,
        "user": {"id": _MARK[SLOT_DISTINCT_ID]},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11.7"}, "trace": {"trace_id": "0" * 32}},
        "breadcrumbs": {"values": []},
        "extra": {"sys.argv": ["shop/server.py"]},
        "modules": {"sentry-sdk": "2.75.0", "urllib3": "2.8.0", "certifi": "2026.10.18"},
        "release": "shop@1.2.3",
        "environment": "production",
        "server_name": "web-1",
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
        "platform": "python",
    }
