"""Headless Chromium (Debian's) for end-to-end tests, and a static web server for their pages."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# What the machine's closed network needs: no background fetches, no QUIC, no sandbox (root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# posthog-js has loaded, taken its remote config and started catching errors: an error thrown
# before this is not captured (a fixed wait loses that race on a busy machine). Pages under
# test expose their instance as window.posthog.
AUTOCAPTURE_READY = """() => {
  const ph = window.posthog;
  return Boolean(ph && ph.__loaded && ph.exceptionObserver && ph.exceptionObserver.isEnabled
    && window.__PosthogExtensions__ && window.__PosthogExtensions__.errorWrappingFunctions);
}"""

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"
)


@contextmanager
def static_sites() -> Iterator[Callable[[Path], str]]:
    """``serve(folder)`` publishes a folder on its own origin and returns that origin's URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(root: Path) -> str:
        handler = partial(_QuietHandler, directory=str(root))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    try:
        yield serve
    finally:
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def wait_for(fetch: Callable[[], Any], what: str, timeout: float = 45) -> Any:
    """``fetch()`` again until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fetch()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
