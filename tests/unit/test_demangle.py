"""Names from debug files made readable as cymbal makes them (symbolic's demangler there,
the C++ runtime's here): the full name for ``mangled_name``, the name alone for
``resolved_name``."""

from __future__ import annotations

import pytest

from trapline.pipeline.frames.demangle import demangle, short_name


@pytest.mark.parametrize(
    ("mangled", "full", "short"),
    [
        ("_ZN4shop4Cart5totalEi", "shop::Cart::total(int)", "shop::Cart::total"),
        ("_ZNK4shop4Cart5priceEv", "shop::Cart::price() const", "shop::Cart::price"),
        ("_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo()", "(anonymous namespace)::foo"),
        ("_ZN4shop4CartclEi", "shop::Cart::operator()(int)", "shop::Cart::operator()"),
        # Rust's legacy scheme: Itanium-shaped, with a crate hash nobody wants to read.
        ("_ZN14checkout_order3run17h0123456789abcdefE", "checkout_order::run", "checkout_order::run"),
        # C names, Swift names (no demangler here) and nonsense stay as they are.
        ("process_order", "process_order", "process_order"),
        ("$s3App12processOrderyS2iF", "$s3App12processOrderyS2iF", "$s3App12processOrderyS2iF"),
        ("_Zgarbage", "_Zgarbage", "_Zgarbage"),
    ],
)
def test_names_are_demangled_in_full_and_alone(mangled: str, full: str, short: str):
    assert (demangle(mangled), short_name(mangled)) == (full, short)
