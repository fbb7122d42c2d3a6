"""http(s) URL parsing and serialisation for web frames' script URLs, as the Rust ``url`` crate
(WHATWG URL) does it: cymbal parses a frame's ``filename`` with it, and the parsed URL's path
becomes the frame's ``source``."""

from __future__ import annotations

import ipaddress
import re
from typing import cast

__all__ = ["http_url"]

_FORBIDDEN_HOST = frozenset("\x00\t\n\r #%/:<>?@[\\]^|\x7f")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_PATH_ENCODE = frozenset(' "#<>?`{}')
_QUERY_ENCODE = frozenset(" \"#<>'")
_FRAGMENT_ENCODE = frozenset(' "<>`')
_USERINFO_ENCODE = _PATH_ENCODE | frozenset("/:;=@[\\]^|")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _percent_encode(text: str, encode: frozenset[str]) -> str:
    out = []
    for char in text:
        if char in encode or ord(char) < 0x20 or ord(char) > 0x7E:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def _ipv4_number(part: str) -> int | None:
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isascii() and part.isdigit() else None
    except ValueError:
        return None


def _host(text: str) -> str | None:
    """WHATWG host parsing for special URLs, as the Rust url crate does it, or None."""
    if text.startswith("["):
        if not text.endswith("]"):
            return None
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            return None
    try:
        decoded = re.sub(
            "(%[0-9A-Fa-f]{2})+",
            lambda match: bytes.fromhex(match.group().replace("%", "")).decode("utf-8"),
            text,
        )
        domain = decoded.lower() if decoded.isascii() else decoded.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        return None
    if not domain or any(char in _FORBIDDEN_HOST or ord(char) < 0x20 for char in domain):
        return None
    labels = domain.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]
    if not re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):
        return domain
    # The host ends in a number, so it must be an IPv4 address (in any of its spellings).
    numbers = [_ipv4_number(label) for label in labels]
    if len(numbers) > 4 or any(number is None for number in numbers):
        return None
    values = cast(list[int], numbers)
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(address))


def _path(text: str) -> str:
    text = text.replace("\\", "/")
    if text.startswith("/"):
        text = text[1:]
    segments = text.split("/")
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        lowered = segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(_percent_encode(segment, _PATH_ENCODE))
    return "/" + "/".join(out)


def http_url(text: str) -> tuple[str, str] | None:
    """Parse an http(s) URL like the Rust url crate: (serialisation, path), or None."""
    text = text.strip(_C0_OR_SPACE)
    text = re.sub("[\t\n\r]", "", text)
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    rest = rest.lstrip("/\\")
    authority = re.match(r"[^/\\?#]*", rest)
    assert authority is not None
    tail = rest[authority.end() :]
    userinfo, at, hostport = authority.group().rpartition("@")
    if not at:
        userinfo = ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host_text, port_text = (hostport, "") if end == -1 else (hostport[: end + 1], hostport[end + 1 :])
        if port_text and not port_text.startswith(":"):
            return None
        port_text = port_text[1:]
    else:
        host_text, _, port_text = hostport.partition(":")
    host = _host(host_text) if host_text else None
    if host is None:
        return None
    port = ""
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            return None
        if int(port_text) != _DEFAULT_PORTS[scheme]:
            port = f":{int(port_text)}"
    user = ""
    if userinfo:
        name, colon, password = userinfo.partition(":")
        user = _percent_encode(name, _USERINFO_ENCODE)
        if colon and password:
            user += ":" + _percent_encode(password, _USERINFO_ENCODE)
        user = f"{user}@" if user else ""
    path_end = re.match(r"[^?#]*", tail)
    assert path_end is not None
    path = _path(path_end.group())
    serialised = f"{scheme}://{user}{host}{port}{path}"
    after = tail[path_end.end() :]
    if after.startswith("?"):
        query, fragment_mark, fragment = after[1:].partition("#")
        serialised += "?" + _percent_encode(query, _QUERY_ENCODE)
        if fragment_mark:
            serialised += "#" + _percent_encode(fragment, _FRAGMENT_ENCODE)
    elif after.startswith("#"):
        serialised += "#" + _percent_encode(after[1:], _FRAGMENT_ENCODE)
    return serialised, path
