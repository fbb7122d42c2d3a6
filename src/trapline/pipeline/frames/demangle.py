"""Readable names for the mangled symbols debug files hold (C++ and Rust).

A symcache returns a function's linkage name: ``_ZN4shop4Cart5totalEi`` for C++'s
``shop::Cart::total(int)``, ``_ZN4shop3run17h0123456789abcdefE`` for Rust's ``shop::run``.
cymbal shows the full demangled name as the frame's ``mangled_name`` and the name alone (no
parameters, no Rust hash) as its ``resolved_name``; the fingerprint is built from the latter.

Itanium names (C++, and Rust's legacy scheme, which is Itanium-shaped) are demangled by the C++
runtime's own ``__cxa_demangle``, loaded from libstdc++ when the system has it. Swift names
(``$s…``) and Rust's v0 scheme (``_R…``) have no demangler here and stay as they are, as does
everything when libstdc++ is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from functools import cache, lru_cache

__all__ = ["demangle", "short_name"]

_RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")


@cache
def _cxa_demangle() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("stdc++") or "libstdc++.so.6"
    try:
        library = ctypes.CDLL(name)
        function = library.__cxa_demangle
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(ctypes.c_int),
    ]
    return function


@cache
def _free() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.free.argtypes = [ctypes.c_void_p]
    return libc.free


@lru_cache(maxsize=8192)
def demangle(name: str) -> str:
    """The full demangled form of an Itanium (C++, legacy Rust) name, else ``name``."""
    if not name.startswith("_Z"):
        return name
    function = _cxa_demangle()
    if function is None:
        return name
    status = ctypes.c_int(0)
    pointer = function(name.encode("utf-8", errors="replace"), None, None, ctypes.byref(status))
    if status.value != 0 or not pointer:
        return name
    try:
        text = ctypes.string_at(pointer).decode("utf-8", errors="replace")
    finally:
        _free()(pointer)
    # Rust's legacy names end in a hash of the crate, which a reader never wants to see.
    return _RUST_HASH.sub("", text)


@lru_cache(maxsize=8192)
def short_name(name: str) -> str:
    """The demangled name without its parameter list (and trailing qualifiers)."""
    full = demangle(name)
    if full == name and not name.startswith("_Z"):
        return name
    return _without_parameters(full)


def _without_parameters(full: str) -> str:
    # Cut the last balanced "(...)" that closes the name, keeping "(anonymous namespace)" and
    # operator() inside the qualified name.
    text = full.rstrip()
    for suffix in (" const", " volatile", " &&", " &"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    if not text.endswith(")"):
        return text
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                head = text[:index]
                if head.endswith("operator") or not head:
                    return text
                return head
    return text
