"""Outbound notifications may only reach public addresses (unless a setting allows more).

A webhook URL is typed into a form by a project member: without a guard it would let them make
the server POST to its own loopback services, the private network it sits in, or the cloud
metadata endpoint that hands out credentials. The check has to look at the *resolved*
address, and at every address a request connects to (redirects, DNS that changes its answer
between a check and the connection), so it sits where every client library connects:
``socket.getaddrinfo``. ``install()`` wraps it once per process; the wrapper refuses only in a
thread that is inside ``guarded()``, so the rest of the process (the database, S3) is untouched.

``address_problem`` is the policy itself, a pure function.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["BlockedAddress", "address_problem", "guarded", "install", "url_problem"]

# Cloud metadata services: they hand out the machine's credentials, and no chat or webhook
# receiver lives there, so they stay refused even where private networks are allowed.
_METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "fe80::a9fe:a9fe")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(OSError):
    """A notification was about to connect to an address the policy refuses."""


def address_problem(text: str, *, allow_private: bool) -> str | None:
    """Why Trapline may not send to this IP address, or None if it may."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return f"{text} is not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return address_problem(str(embedded), allow_private=allow_private)
    if address in _METADATA:
        return f"{address} is a cloud metadata address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if allow_private:
        return None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return f"{address} is a shared (carrier-grade NAT) address"
    if address.is_private or address.is_reserved or not address.is_global:
        return f"{address} is a private address"
    return None


def url_problem(host: str, *, allow_private: bool) -> str | None:
    """Why a URL with this host is refused now: its literal address, or what the name
    resolves to. A name that does not resolve is not refused here (it is checked again, on
    each connection, when something is sent)."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return address_problem(host, allow_private=allow_private)
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return None if allow_private else f"{host} is this machine (loopback)"
    try:
        infos = _real_getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    except OSError:
        return None
    for info in infos:
        problem = address_problem(str(info[4][0]), allow_private=allow_private)
        if problem is not None:
            return f"{host} resolves to {problem.removeprefix(str(info[4][0]) + ' is ')} ({info[4][0]})"
    return None


_state = threading.local()
_real_getaddrinfo = socket.getaddrinfo
_install_lock = threading.Lock()
_installed = False


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    infos = _real_getaddrinfo(host, *args, **kwargs)
    policy: bool | None = getattr(_state, "allow_private", None)
    if policy is None:
        return infos
    for info in infos:
        address = str(info[4][0])
        problem = address_problem(address, allow_private=policy)
        if problem is not None:
            blocked = f"refused to connect to {host}: {problem}"
            if not policy and address_problem(address, allow_private=True) is None:
                blocked += " (TRAPLINE_ALERTS_ALLOW_PRIVATE_NETWORKS=true allows private networks)"
            _state.blocked = blocked
            raise BlockedAddress(blocked)
    return infos


def install() -> None:
    """Wrap ``socket.getaddrinfo`` (once); outside ``guarded()`` it behaves as before."""
    global _installed
    with _install_lock:
        if not _installed:
            socket.getaddrinfo = _guarded_getaddrinfo
            _installed = True


@contextmanager
def guarded(*, allow_private: bool) -> Iterator[list[str]]:
    """Connections this thread makes inside the block are checked; the list it yields holds
    the refusal, if one happened (libraries often wrap the error in their own)."""
    install()
    previous = getattr(_state, "allow_private", None)
    _state.allow_private = allow_private
    _state.blocked = None
    refusals: list[str] = []
    try:
        yield refusals
    finally:
        if _state.blocked:
            refusals.append(_state.blocked)
        _state.allow_private = previous
        _state.blocked = None
