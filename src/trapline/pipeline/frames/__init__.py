"""Raw stack frames in, cymbal's resolved ``Frame`` JSON out.

SDKs send ``{"type": "raw", "frames": [...]}`` stacks whose frames are tagged by ``platform``;
cymbal turns each raw frame into one or more resolved frames (``rust/cymbal/src/frames/mod.rs``
and ``langs/*.rs``). This package does that for every platform cymbal reads, byte for byte,
so that the frames, and the fingerprints built from them, match PostHog's; for frames that
need a symbol set it says what to look up (``symbol_lookup``) and builds the frames the
resolver (``trapline.symbols``) finds, or the failure when it finds none:

===================== =========================================================================
platform              resolved frame
===================== =========================================================================
``python``            as sent: source=filename, line=lineno, resolved_name=function, lang python
``ruby``              like python, lang ruby, no module
``node:javascript``   without ``chunk_id`` (or without lineno+colno): as sent, column dropped,
                      lang javascript. With a ``chunk_id`` a symbol set is needed; with none
                      uploaded the frame fails with "No sourcemap uploaded for chunk id: ..."
                      and counts as minified when its context lines average over 300 bytes.
``web:javascript``,   without lineno+colno: as sent (resolved). Otherwise a source map is
``javascript``        needed; without one the frame carries the error in ``resolve_failure``
                      and cymbal's "was minified" guess decides ``resolved`` (see
                      ``js_frame_without_symbols``).
``go``                as sent, lang go
``custom``            as sent, lang = ``lang``, resolved = ``resolved`` (default false)
``dart``              as sent: source=abs_path, resolved_name=function (or ""), lang dart
``hermes``            React Native: looked up by ``chunk_id`` and bytecode offset (``colno``)
                      in a Hermes map; without a chunk id "No chunk id sent with frame",
                      without a column passed through by name
``java``              Android: looked up by ``map_id`` in a ProGuard/R8 mapping, one frame per
                      inlined method (innermost first, as cymbal keeps them); without a map id
                      "No map ID sent with frame"
``apple``, ``native`` instruction addresses looked up in the debug file (dSYM, ELF) of the
(alias ``rust``)      ``$debug_images`` entry holding them, one frame per inline layer
                      (outermost first); native frames without an address, or marked
                      ``inline`` by the SDK, pass through as the client resolved them
anything else         trapline's fallback, see below
===================== =========================================================================

Facts taken from cymbal's source: ``in_app`` defaults to true when absent (``langs/mod.rs``,
``default_in_app``), so posthog-python's stdlib frames, which omit it, count as in-app;
``synthetic`` defaults to false. ``suspicious`` is set only when a source map resolves a web
frame into a source containing ``posthog-js@`` (``suspicious_source``); every frame built here
has it false, as in cymbal. Fields cymbal skips when None (``line``, ``column``, ``source``,
``module``, ``resolved_name``, ``resolve_failure``, ``code_variables``) are omitted, and keys
come in the order of cymbal's ``Frame`` struct. ``junk_drawer`` (debug data) is never emitted;
``context``, ``release`` and ``exception_type`` are ``#[serde(skip)]`` and never serialised.

Each frame's ``raw_id`` is ``"<hash>/<part>"``: the SHA-512 hex digest of the raw frame's
identifying bytes (per platform, see ``raw_frame_hash``) and the index of the resolved frame
among those its raw frame produced (always 0 here; a symbol set can expand one raw frame into
several). Frames with equal raw ids are the same frame to cymbal: it caches the first
resolution by raw id, so a later duplicate gets the first one's fields (in_app included).

Source context (the lines around the frame) is returned beside the frame, never inside it:
cymbal stores it with the frame record and keeps it off the event. Lines are cut at 300
characters plus "...✂️". ``before`` lists the nearest line first, as current cymbal does.

Unknown platforms: cymbal fails the whole event ("Invalid properties: ... unknown variant").
Trapline keeps the event and degrades the one frame: ``resolved`` false, ``resolve_failure``
"Unsupported platform: <platform>", ``lang`` the platform, ``raw_id`` the SHA-512 of the frame's
canonical JSON. The same holds for ``php``, which cymbal reads and trapline does not yet.

Modules, one per platform family plus what they share:

======================= ======================================================================
module                  owns
======================= ======================================================================
``base``                the frame types (``RawFrame``, ``Frame``, ``FrameContext``, ...), the
                        ``ParsedFrame`` protocol, ``build_frame``, raw-id hashing primitives,
                        context lines
``stack``               the platform dispatch (``PARSERS``), the per-frame and per-stack
                        caches, ``resolve_frame``/``resolve_stack`` and the other raw-frame
                        entry points
``sentry_like``         python, ruby and node:javascript frames
``javascript``          web:javascript/javascript frames, ``JsResolveError``
``urls``                the WHATWG (Rust ``url`` crate) parsing of web frames' script URLs
``go``, ``custom``      go and custom frames
``dart``                Flutter frames
``hermes``              React Native frames
``java``                JVM/Android frames (and the exception class de-obfuscation rule)
``native``              apple and native frames, and ``attach_debug_images``
``unknown``             the fallback for every other platform
``js_symbols``          the frames a symbol-set resolver builds for JavaScript frames
``resolved``            frames that arrive already resolved (``normalize_resolved_frame``)
======================= ======================================================================

A new platform is one module with a frozen dataclass implementing ``base.ParsedFrame``
(``raw_hash``, ``pass_through``, ``lookup``, ``context``) and a parse function, plus its tag's
line in ``stack.PARSERS``.
"""

from __future__ import annotations

from trapline.pipeline._wire import WireError
from trapline.pipeline.frames.base import (
    CONTEXT_LINE_MAX_CHARS,
    ContextLine,
    Frame,
    FrameContext,
    RawFrame,
    ResolvedFrame,
    ResolvedStack,
    Resolver,
    SymbolLookup,
    context_line,
)
from trapline.pipeline.frames.javascript import JsResolveError, JsResolveErrorKind, suspicious_source
from trapline.pipeline.frames.js_symbols import (
    js_frame_without_symbols,
    mapped_frame,
    node_frame_without_symbols,
    unmapped_frame,
)
from trapline.pipeline.frames.resolved import normalize_resolved_frame
from trapline.pipeline.frames.stack import (
    STACK_MEMO_MAX_BYTES,
    raw_frame_context,
    raw_frame_hash,
    resolve_frame,
    resolve_stack,
    stack_lookups,
    symbol_lookup,
    validate_raw_frame,
    validate_raw_frames,
)

__all__ = [
    "CONTEXT_LINE_MAX_CHARS",
    "STACK_MEMO_MAX_BYTES",
    "ContextLine",
    "Frame",
    "FrameContext",
    "JsResolveError",
    "JsResolveErrorKind",
    "RawFrame",
    "ResolvedFrame",
    "ResolvedStack",
    "Resolver",
    "SymbolLookup",
    "WireError",
    "context_line",
    "js_frame_without_symbols",
    "mapped_frame",
    "node_frame_without_symbols",
    "normalize_resolved_frame",
    "raw_frame_context",
    "raw_frame_hash",
    "resolve_frame",
    "resolve_stack",
    "stack_lookups",
    "suspicious_source",
    "symbol_lookup",
    "unmapped_frame",
    "validate_raw_frame",
    "validate_raw_frames",
]
