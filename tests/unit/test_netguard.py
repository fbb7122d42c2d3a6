"""The outbound address policy, and the guard that applies it where connections are made."""

from __future__ import annotations

import socket

import pytest

from trapline.alerts.netguard import BlockedAddress, address_problem, guarded, url_problem


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("192.0.2.1", "private"),  # documentation range: not on the internet
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str):
    problem = address_problem(address, allow_private=False)
    assert problem is not None and why in problem


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"])
def test_public_addresses_are_allowed(address: str):
    assert address_problem(address, allow_private=False) is None


def test_allowing_private_networks_still_refuses_metadata_endpoints():
    assert address_problem("127.0.0.1", allow_private=True) is None
    assert address_problem("10.1.2.3", allow_private=True) is None
    assert "cloud metadata" in (address_problem("169.254.169.254", allow_private=True) or "")


def test_the_setting_is_named_only_where_it_would_help():
    for address, named in (("127.0.0.1", True), ("169.254.169.254", False)):
        with guarded(allow_private=False) as refusals, pytest.raises(BlockedAddress):
            socket.create_connection((address, 9), timeout=0.2)
        assert ("TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS" in refusals[0]) == named


def test_urls_are_judged_by_literal_address_or_by_what_their_name_resolves_to():
    assert url_problem("127.0.0.1", allow_private=False) == "127.0.0.1 is a loopback address"
    assert url_problem("[::1]", allow_private=False) == "::1 is a loopback address"
    assert url_problem("localhost", allow_private=False) == "localhost is this machine (loopback)"
    assert url_problem("localhost", allow_private=True) is None
    # A name that does not resolve now is checked again when something is sent.
    assert url_problem("no-such-host.invalid", allow_private=False) is None


def test_the_guard_refuses_connections_only_inside_the_block():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with (
            guarded(allow_private=False) as refusals,
            pytest.raises(BlockedAddress, match=r"127\.0\.0\.1 is a loopback address"),
        ):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        assert refusals and "TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS" in refusals[0]
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # outside: untouched
        with guarded(allow_private=True) as refusals:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert refusals == []
