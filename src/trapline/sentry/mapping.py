"""A Sentry event as the ``$exception`` event a PostHog SDK would have sent: pure, no I/O.

The result goes through the same queue and pipeline as PostHog's events, so an exception
sent by sentry-sdk gets the fingerprint posthog-python would have given it.

Kept:

* ``exception.values`` (a legacy bare list too), reversed: Sentry lists the root cause first,
  PostHog the outermost exception. Type, value, module, thread id, the mechanism (type,
  handled, synthetic, source, ids).
* Frames by platform (a frame's own ``platform``, else the event's): ``python`` and ``ruby``
  as posthog-python sends them, with ``vars`` as ``code_variables`` (python); ``javascript``
  and ``node`` as ``web:javascript`` (browser SDKs) or ``node:javascript`` (server runtimes),
  with the ``debug_meta`` debug id of the frame's file as its ``chunk_id``, so uploaded source
  maps resolve them; ``go`` as go frames; every other platform as ``custom`` frames (resolved
  when the SDK named the function). ``in_app``, context lines.
* Message events (``logentry``/``message``, no exception): one exception whose type is the
  ``logger`` (else the level, capitalised) and whose value is the message; with the stack of
  the event's thread when the SDK attached one.
* ``fingerprint``: ``["{{ default }}"]`` is the default grouping; other values become
  ``$exception_fingerprint`` (one part as is, several as a JSON list); parts next to
  ``{{ default }}`` go to ``$sentry_fingerprint``, which the pipeline combines with the
  fingerprint it computes.
* ``level`` (``$exception_level``), ``release`` (``$app_version``), ``environment``
  (``$environment``), ``user`` (``distinct_id`` from its id, email, username or IP, ``email``,
  ``$ip``), ``request`` (``$current_url``, ``$raw_user_agent``, ``$referrer``), the ``os``,
  ``browser``, ``runtime`` and ``trace`` contexts (``$os``, ``$os_version``, ``$browser``,
  ``$browser_version``, ``$python_runtime``/``$python_version``, ``$trace_id``,
  ``$span_id``), the SDK (``$lib``, ``$lib_version``), ``event_id`` (the event's uuid and
  ``$sentry_event_id``), ``timestamp``, ``logger``, ``transaction``, ``server_name``,
  ``platform`` (``$sentry_platform``), and ``tags`` and ``extra`` as plain properties (never
  over a property set above, never a ``$`` name).

Dropped: breadcrumbs, modules, the SDK's packages and integrations, other contexts, the
request's body, cookies, environment and other headers, threads other than the one whose
stack is used, spans and measurements, frame addresses, packages and symbols, ``vars`` of
non-python frames.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from trapline.pipeline.fingerprint import DEFAULT_PART

__all__ = ["to_posthog_event"]

_DEFAULT = re.compile(r"^\{\{\s*default\s*\}\}$", re.IGNORECASE)
_LEVELS = frozenset({"fatal", "error", "warning", "info", "debug"})
# Runtimes whose JavaScript is server-side: their frames are node frames, not browser ones.
_SERVER_JS_RUNTIMES = frozenset({"node", "bun", "deno"})
_SERVER_JS_SDKS = ("node", "bun", "deno", "serverless", "nestjs", "google-cloud", "aws", "cloudflare", "vercel")
_MECHANISM_KEYS = ("type", "handled", "synthetic", "source", "exception_id", "parent_id")
_CONTEXT_KEYS = ("pre_context", "context_line", "post_context")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32 else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pairs(value: Any) -> list[tuple[str, Any]]:
    """Tags and headers come as an object or as a list of [name, value] pairs."""
    if isinstance(value, Mapping):
        return [(k, v) for k, v in value.items() if isinstance(k, str)]
    if isinstance(value, list):
        return [(p[0], p[1]) for p in value if isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[0], str)]
    return []


def _timestamp(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    return _str(value)


def _event_uuid(event_id: Any) -> str:
    if isinstance(event_id, str):
        try:
            return str(uuid.UUID(event_id))
        except ValueError:
            pass
    return str(uuid.uuid4())


def _is_server_js(event: Mapping[str, Any]) -> bool:
    runtime = _str(_map(_map(event.get("contexts")).get("runtime")).get("name"))
    if runtime is not None and runtime.lower() in _SERVER_JS_RUNTIMES:
        return True
    if event.get("platform") == "node":
        return True
    sdk = (_str(_map(event.get("sdk")).get("name")) or "").lower()
    return sdk.startswith("sentry.javascript.") and any(part in sdk for part in _SERVER_JS_SDKS)


def _debug_ids(event: Mapping[str, Any]) -> dict[str, str]:
    """File → debug id, from ``debug_meta.images`` (what bundlers injected, the chunk ids here)."""
    found: dict[str, str] = {}
    images = _map(event.get("debug_meta")).get("images")
    for image in images if isinstance(images, list) else []:
        image = _map(image)
        code_file, debug_id = _str(image.get("code_file")), _str(image.get("debug_id"))
        if image.get("type") == "sourcemap" and code_file and debug_id:
            found[code_file] = debug_id
    return found


def _context(frame: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key in _CONTEXT_KEYS:
        value = frame.get(key)
        if key == "context_line" and isinstance(value, str):
            out[key] = value
        elif key != "context_line" and isinstance(value, list):
            out[key] = [line for line in value if isinstance(line, str)]


def _in_app(frame: Mapping[str, Any], out: dict[str, Any]) -> None:
    if isinstance(frame.get("in_app"), bool):
        out["in_app"] = frame["in_app"]


def _frame(frame: Mapping[str, Any], platform: str, event: Mapping[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    filename = _str(frame.get("filename"))
    abs_path = _str(frame.get("abs_path"))
    function = _str(frame.get("function")) or _str(frame.get("raw_function"))
    lineno, colno = _int(frame.get("lineno")), _int(frame.get("colno"))
    module = _str(frame.get("module"))
    out: dict[str, Any]
    if platform in ("python", "ruby"):
        out = {"platform": platform, "filename": filename or abs_path or module or "<unknown>"}
        if abs_path:
            out["abs_path"] = abs_path
        out["function"] = function or "<unknown>"
        if module and platform == "python":
            out["module"] = module
        if lineno is not None:
            out["lineno"] = lineno
        _context(frame, out)
        _in_app(frame, out)
        if platform == "python" and isinstance(frame.get("vars"), Mapping):
            out["code_variables"] = dict(frame["vars"])
        return out
    if platform in ("javascript", "node"):
        node = platform == "node" or _is_server_js(event)
        location = abs_path or filename
        out = {
            "platform": "node:javascript" if node else "web:javascript",
            "filename": (filename or abs_path or "<unknown>") if node else (location or "<unknown>"),
            "function": function or "?",
        }
        if lineno is not None:
            out["lineno"] = lineno
        if colno is not None:
            out["colno"] = colno
        if node:
            if module:
                out["module"] = module
            _context(frame, out)
        _in_app(frame, out)
        chunk_id = ids.get(location or "") or ids.get(filename or "")
        if chunk_id:
            out["chunk_id"] = chunk_id
        return out
    if platform == "go" and filename and function and lineno is not None:
        out = {"platform": "go", "filename": filename, "function": function, "lineno": lineno}
        _in_app(frame, out)
        return out
    # Everything else (java, cocoa, native, csharp, php, elixir, …) passes as a custom frame:
    # what the SDK resolved is kept; an address-only frame says so.
    named = function or _str(frame.get("symbol"))
    out = {
        "platform": "custom",
        "lang": platform or "unknown",
        "function": named or _str(frame.get("instruction_addr")) or "?",
        "resolved": named is not None,
    }
    if filename or abs_path:
        out["filename"] = filename or abs_path
    if lineno is not None:
        out["lineno"] = lineno
    if colno is not None:
        out["colno"] = colno
    if module or _str(frame.get("package")):
        out["module"] = module or frame.get("package")
    _context(frame, out)
    _in_app(frame, out)
    return out


def _stacktrace(
    stacktrace: Any, event: Mapping[str, Any], platform: str, ids: Mapping[str, str]
) -> dict[str, Any] | None:
    frames = _map(stacktrace).get("frames")
    if not isinstance(frames, list):
        return None
    mapped = [
        _frame(frame, _str(frame.get("platform")) or platform, event, ids)
        for frame in frames
        if isinstance(frame, Mapping)
    ]
    return {"type": "raw", "frames": mapped} if mapped else None


def _thread_stack(event: Mapping[str, Any], thread_id: Any = None) -> Any:
    """The stack of the thread an exception (or message) came from: the one named, else the
    crashed one, else the current one."""
    values = _map(event.get("threads")).get("values")
    threads = [thread for thread in values if isinstance(thread, Mapping)] if isinstance(values, list) else []
    for wanted in (
        lambda t: thread_id is not None and t.get("id") == thread_id,
        lambda t: t.get("crashed") is True,
        lambda t: t.get("current") is True,
    ):
        for thread in threads:
            if wanted(thread) and thread.get("stacktrace"):
                return thread["stacktrace"]
    return threads[0].get("stacktrace") if len(threads) == 1 else None


def _exception_values(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, Mapping) else exception
    return [value for value in values if isinstance(value, Mapping)] if isinstance(values, list) else []


def _message(event: Mapping[str, Any]) -> str | None:
    for holder in (event.get("logentry"), event.get("message")):
        if isinstance(holder, str) and holder:
            return holder
        if isinstance(holder, Mapping):
            text = _str(holder.get("formatted")) or _str(holder.get("message"))
            if text:
                return text
    return None


def _level(event: Mapping[str, Any]) -> str:
    level = _str(event.get("level"))
    if level is None:
        return "error"
    level = level.lower()
    return "warning" if level == "warn" else level if level in _LEVELS else "error"


def _exception_list(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    platform = _str(event.get("platform")) or "other"
    ids = _debug_ids(event)
    values = _exception_values(event)
    entries: list[dict[str, Any]] = []
    for index, value in enumerate(reversed(values)):
        mechanism = {key: value["mechanism"][key] for key in _MECHANISM_KEYS if key in _map(value.get("mechanism"))}
        mechanism.setdefault("type", "generic")
        if index == 0:
            # Sentry counts an exception without a mechanism as handled.
            mechanism.setdefault("handled", True)
        mechanism.setdefault("exception_id", index)
        if index > 0:
            mechanism.setdefault("parent_id", index - 1)
        entry: dict[str, Any] = {
            "type": _str(value.get("type")) or "Error",
            "value": value.get("value") if isinstance(value.get("value"), str) else "",
            "mechanism": mechanism,
            "module": _str(value.get("module")),
        }
        if value.get("thread_id") is not None:
            entry["thread_id"] = value["thread_id"]
        stack = value.get("stacktrace") or (
            # The SDK may put the stack on the thread (or, in old SDKs, on the event) instead.
            _thread_stack(event, value.get("thread_id")) or event.get("stacktrace") if len(values) == 1 else None
        )
        stacktrace = _stacktrace(stack, event, platform, ids)
        if stacktrace is not None:
            entry["stacktrace"] = stacktrace
        entries.append(entry)
    if entries:
        return entries
    level = _level(event)
    entry = {
        "type": _str(event.get("logger")) or level.capitalize(),
        "value": _message(event) or _str(event.get("transaction")) or "(no message)",
        "mechanism": {"type": "generic", "handled": True, "synthetic": True, "exception_id": 0},
        "module": None,
    }
    stacktrace = _stacktrace(_thread_stack(event) or event.get("stacktrace"), event, platform, ids)
    if stacktrace is not None:
        entry["stacktrace"] = stacktrace
    return [entry]


def _fingerprint(event: Mapping[str, Any], properties: dict[str, Any]) -> None:
    parts = event.get("fingerprint")
    if not isinstance(parts, list):
        return
    parts = [str(part) for part in parts if isinstance(part, str | int | float) and not isinstance(part, bool)]
    defaults = [bool(_DEFAULT.match(part)) for part in parts]
    if not parts or all(defaults):
        return
    if any(defaults):
        properties["$sentry_fingerprint"] = [DEFAULT_PART if d else p for p, d in zip(parts, defaults, strict=True)]
        return
    properties["$exception_fingerprint"] = parts[0] if len(parts) == 1 else orjson.dumps(parts).decode()


def _user(event: Mapping[str, Any], properties: dict[str, Any]) -> str | None:
    user = _map(event.get("user"))
    ip = _str(user.get("ip_address"))
    if ip and ip != "{{auto}}":
        properties["$ip"] = ip
    else:
        ip = None
    email = _str(user.get("email"))
    if email:
        properties["email"] = email
    user_id = user.get("id")
    if isinstance(user_id, int | float) and not isinstance(user_id, bool):
        user_id = str(user_id)
    return _str(user_id) or email or _str(user.get("username")) or ip


def _request(event: Mapping[str, Any], properties: dict[str, Any]) -> None:
    request = _map(event.get("request"))
    url = _str(request.get("url"))
    query = request.get("query_string")
    if url:
        if isinstance(query, str) and query and "?" not in url:
            url = f"{url}?{query}"
        properties["$current_url"] = url
    for name, value in _pairs(request.get("headers")):
        lowered = name.lower()
        if lowered == "user-agent" and isinstance(value, str):
            properties["$raw_user_agent"] = value
        elif lowered == "referer" and isinstance(value, str):
            properties["$referrer"] = value


def _contexts(event: Mapping[str, Any], properties: dict[str, Any]) -> None:
    contexts = _map(event.get("contexts"))
    for context, prefix in (("os", "$os"), ("browser", "$browser")):
        found = _map(contexts.get(context))
        if _str(found.get("name")):
            properties[prefix] = found["name"]
            if _str(found.get("version")):
                properties[f"{prefix}_version"] = found["version"]
    runtime = _map(contexts.get("runtime"))
    if event.get("platform") == "python" and _str(runtime.get("name")):
        properties["$python_runtime"] = runtime["name"]
        if _str(runtime.get("version")):
            properties["$python_version"] = runtime["version"]
    trace = _map(contexts.get("trace"))
    for key in ("trace_id", "span_id"):
        if _str(trace.get(key)):
            properties[f"${key}"] = trace[key]


def _plain(properties: dict[str, Any], source: Any) -> None:
    for name, value in _pairs(source):
        if name and not name.startswith("$") and name not in properties:
            properties[name] = value


def to_posthog_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``$exception`` event for one Sentry error or message event."""
    properties: dict[str, Any] = {
        "$exception_list": _exception_list(event),
        "$exception_level": _level(event),
    }
    _fingerprint(event, properties)
    sdk = _map(event.get("sdk"))
    properties["$lib"] = _str(sdk.get("name")) or "sentry"
    if _str(sdk.get("version")):
        properties["$lib_version"] = sdk["version"]
    for key, name in (
        ("event_id", "$sentry_event_id"),
        ("platform", "$sentry_platform"),
        ("release", "$app_version"),
        ("environment", "$environment"),
        ("logger", "logger"),
        ("transaction", "transaction"),
        ("server_name", "server_name"),
    ):
        if _str(event.get(key)):
            properties[name] = event[key]
    distinct_id = _user(event, properties)
    _request(event, properties)
    _contexts(event, properties)
    _plain(properties, event.get("tags"))
    _plain(properties, event.get("extra"))
    if distinct_id is None:
        # posthog-python's way for events without a person: a fresh id, no person profile.
        distinct_id = _event_uuid(event.get("event_id"))
        properties["$process_person_profile"] = False
    out: dict[str, Any] = {
        "event": "$exception",
        "uuid": _event_uuid(event.get("event_id")),
        "distinct_id": distinct_id,
        "properties": properties,
    }
    timestamp = _timestamp(event.get("timestamp"))
    if timestamp is not None:
        out["timestamp"] = timestamp
    return out
