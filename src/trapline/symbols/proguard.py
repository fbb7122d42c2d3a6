"""ProGuard / R8 mapping files: obfuscated Java classes, methods and lines back to the source.

One obfuscated frame can stand for several original ones: R8 and ProGuard inline small
methods into their callers, and the mapping records, per line range of the obfuscated method,
the chain of methods inlined there. ``remap_frame`` returns that chain innermost first, the
order the frames go on the stack as sent (crash site last, the JVM's order reversed per
physical frame by the caller).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

from symbolic.proguard import ProguardMapper

__all__ = ["JavaFrame", "ProguardMap"]

# A class line: "original.Name -> obfuscated:" (members are indented under it).
_CLASS_LINE = re.compile(rb"^[^\s#][^\n]* -> [^\n]+:\s*$", re.MULTILINE)


@dataclass(frozen=True)
class JavaFrame:
    module: str  # the original class
    function: str  # the original method
    line: int | None
    file: str | None


class ProguardMap:
    def __init__(self, mapper: ProguardMapper, size: int) -> None:
        self._mapper = mapper
        self.size = size

    @classmethod
    def from_payload(cls, data: bytes) -> ProguardMap | str:
        """Parse a mapping file, or say why it is unusable (the reason is stored)."""
        if not _CLASS_LINE.search(data):
            return "Invalid mapping: no class mappings (lines like 'com.example.Foo -> a:') found"
        # symbolic reads mappings from a path only; the file can go once it is read.
        handle, path = tempfile.mkstemp(prefix="trapline-proguard-", suffix=".txt")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            mapper = ProguardMapper.open(path)
        except Exception as exc:  # symbolic raises its own exception tree
            return f"Invalid mapping: {exc or type(exc).__name__}"
        finally:
            os.unlink(path)
        return cls(mapper, len(data))

    def remap_class(self, obfuscated: str) -> str | None:
        return self._mapper.remap_class(obfuscated)

    def remap_frame(self, module: str, function: str, line: int | None) -> list[JavaFrame]:
        """The original frames of an obfuscated one, innermost (inlined) first; [] if unknown."""
        frames = self._mapper.remap_frame(module, function, line or 0)
        return [
            JavaFrame(frame.class_name, frame.method, frame.line if frame.line else None, frame.file)
            for frame in frames
        ]
