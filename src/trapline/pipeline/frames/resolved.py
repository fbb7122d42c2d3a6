"""Frames that arrive already resolved (stacks the client sent as ``"type": "resolved"``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import cast

from trapline.pipeline._wire import WireError, get_bool, get_str, get_u32, invalid_type
from trapline.pipeline.frames.base import Frame, build_frame

__all__ = ["normalize_resolved_frame"]


def normalize_resolved_frame(obj: object) -> Frame:
    """A frame from a stack the client sent as ``"type": "resolved"``, re-serialised the way
    cymbal re-serialises it: unknown keys dropped, None fields omitted, ``synthetic`` and
    ``suspicious`` defaulting to false, ``raw_id`` written as ``"<hash>/<part>"``.

    Raises ``WireError`` where cymbal's deserialisation would fail.
    """
    if not isinstance(obj, Mapping):
        raise invalid_type(obj, "struct Frame")
    raw_id = cast(str, get_str(obj, "raw_id", required=True))
    # FrameId's deserialiser: "<hash>/<part>", the part an i32, a bare hash meaning part 0.
    hash_id, slash, rest = raw_id.partition("/")
    part = rest.split("/")[0] if slash else "0"
    if not part:
        raise WireError("cannot parse integer from empty string")
    if not re.fullmatch(r"[+-]?[0-9]+", part):
        raise WireError("invalid digit found in string")
    if not -(2**31) <= int(part) < 2**31:
        raise WireError("number too large to fit in target type")
    synthetic = get_bool(obj, "synthetic", default=False)
    suspicious = get_bool(obj, "suspicious", default=False)
    return build_frame(
        raw_id=f"{hash_id}/{int(part)}",
        mangled_name=cast(str, get_str(obj, "mangled_name", required=True)),
        line=get_u32(obj, "line"),
        column=get_u32(obj, "column"),
        source=get_str(obj, "source"),
        module=get_str(obj, "module"),
        in_app=_required_bool(obj, "in_app"),
        resolved_name=get_str(obj, "resolved_name"),
        lang=cast(str, get_str(obj, "lang", required=True)),
        resolved=_required_bool(obj, "resolved"),
        resolve_failure=get_str(obj, "resolve_failure"),
        synthetic=bool(synthetic),
        suspicious=bool(suspicious),
        code_variables=obj.get("code_variables"),
    )


def _required_bool(obj: Mapping[str, object], key: str) -> bool:
    if key not in obj:
        raise WireError(f"missing field `{key}`")
    value = obj[key]
    if not isinstance(value, bool):
        raise invalid_type(value, "a boolean")
    return value
