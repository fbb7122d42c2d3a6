"""A counting reverse proxy: SDKs talk to it, it forwards to a live server and keeps a log.

What an SDK did is best seen where it arrives: every request is forwarded as it came (body
untouched, compressed or not) and recorded with its answer and the time it arrived, so a test
can count requests and measure the pauses between them.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

# Headers that belong to one connection, or that httpx sets again for the forwarded request.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "host", "content-length"}
)


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy saw it, and the server's answer."""

    at: float  # time.monotonic() when the request arrived
    done: float  # time.monotonic() when the answer was passed back
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # the request's, names in lower case
    body: bytes  # the request's, as sent
    status: int
    response_headers: dict[str, str]  # names in lower case
    response_body: bytes

    @property
    def retry_after(self) -> str | None:
        return self.response_headers.get("retry-after")

    @property
    def rate_limits(self) -> str | None:
        return self.response_headers.get("x-sentry-rate-limits")


class CountingProxy:
    """The proxy's address and what went through it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self, path_prefix: str = "") -> list[Exchange]:
        """What went through so far, in the order requests arrived."""
        with self._lock:
            found = [e for e in self._exchanges if e.path.startswith(path_prefix)]
        return sorted(found, key=lambda exchange: exchange.at)

    def log(self) -> str:
        """One line per request, for failure messages."""
        exchanges = self.exchanges()
        start = exchanges[0].at if exchanges else 0.0
        return "\n".join(
            f"{e.at - start:7.2f}s {e.method} {e.path} -> {e.status} "
            f"retry-after={e.retry_after} x-sentry-rate-limits={e.rate_limits}"
            for e in exchanges
        )


@contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """A proxy in front of ``upstream`` (a base URL), on a port of its own, for the block's length."""
    client = httpx.Client(base_url=upstream, timeout=30)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    proxy = CountingProxy(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.client, httpd.proxy = client, proxy
    thread = threading.Thread(target=httpd.serve_forever, name="counting-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
        client.close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    client: httpx.Client
    proxy: CountingProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._forward()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _forward(self) -> None:
        client, proxy = self.server.client, self.server.proxy
        at = time.monotonic()
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        upstream_headers = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        upstream_headers["accept-encoding"] = "identity"  # pass answers back as they are
        try:
            response = client.request(self.command, self.path, content=body, headers=upstream_headers)
            answer = {name.lower(): value for name, value in response.headers.items()}
            status, content = response.status_code, response.content
        except httpx.HTTPError as exc:
            status, answer, content = 502, {"content-type": "text/plain"}, f"proxy: {exc!r}".encode()
        proxy.record(Exchange(at, time.monotonic(), self.command, self.path, headers, body, status, answer, content))
        # A page being closed may not wait for its answer (sendBeacon): that is no error here.
        with contextlib.suppress(OSError):
            self.send_response(status)
            for name, value in answer.items():
                if name not in _HOP_BY_HOP and name != "content-encoding":
                    self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.send_header("connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass
