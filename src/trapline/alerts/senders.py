"""Sending one notification to its destination, and what came of it (an ``Outcome``).

Every destination is reached inside ``netguard.guarded``: whatever address a URL resolves to,
or redirects to, is checked when the connection is made. Answers are read up to a cap and
within a time limit. Secrets (webhook URLs, tokens, the SMTP password) are never logged, and
the errors kept in the delivery log have them cut out.

How answers count:

* 2xx: delivered.
* 408, 425, 429, 5xx, timeouts, refused or dropped connections, SMTP 4xx: tried again later
  (429 and 503 after the receiver's ``Retry-After``).
* other 4xx, too many redirects, a refused address, SMTP 5xx: failed; trying again would not help.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import logging
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import orjson

from trapline import __version__
from trapline.alerts import netguard
from trapline.alerts.messages import describe, discord_body, email_parts, slack_body, teams_body
from trapline.alerts.outbox import Outcome

__all__ = ["RESERVED_HEADERS", "SIGNATURE_HEADER", "SenderOptions", "Senders", "retry_after_seconds", "sanitize"]

SIGNATURE_HEADER = "X-Trapline-Signature"
# Set by Trapline on every webhook; an alert's own headers cannot replace them.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "idempotency-key", SIGNATURE_HEADER.lower()})
# The signature is computed here and passed in with the alert's own headers.
_OVERRIDABLE_NOT = RESERVED_HEADERS - {SIGNATURE_HEADER.lower()}
_USER_AGENT = f"Trapline/{__version__} (alerts)"
_RETRY_STATUSES = frozenset({408, 425, 429})
_MAX_REDIRECTS = 3
_KEPT_ANSWER = 300  # characters of a refusing receiver's answer kept in the log

# httpx logs every request's URL at INFO, and apprise logs its (secret-bearing) URLs too.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)
logging.getLogger("apprise").propagate = False


@dataclass(frozen=True)
class SmtpOptions:
    host: str
    port: int
    security: str
    username: str
    password: str
    sender: str


@dataclass(frozen=True)
class SenderOptions:
    allow_private: bool = False
    timeout_seconds: float = 10.0
    response_max_bytes: int = 64 * 1024
    smtp: SmtpOptions | None = None


def sanitize(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and the path and query of secret URLs) replaced by ``…``."""
    pieces: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        pieces.add(secret)
        parts = httpx.URL(secret) if "://" in secret else None
        if parts is not None:
            for piece in (parts.raw_path.decode(errors="replace"), parts.query.decode(errors="replace")):
                pieces.update(p for p in piece.split("/") if len(p) >= 6)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "…")
    return text


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class Senders:
    """Sends notifications; one per process, used from any thread."""

    def __init__(self, options: SenderOptions) -> None:
        self.options = options
        # apprise reports errors only through its logger, which is process-wide.
        self._apprise_lock = threading.Lock()

    def send(
        self, destination_type: str, destination: Mapping[str, Any], payload: Mapping[str, Any], key: uuid.UUID
    ) -> Outcome:
        secrets = _secrets_of(destination)
        with netguard.guarded(allow_private=self.options.allow_private) as refusals:
            try:
                outcome = self._send(destination_type, destination, payload, key)
            except netguard.BlockedAddress as exc:
                outcome = Outcome("failed", error=str(exc))
            except Exception as exc:  # an unexpected failure of a client library: try again later
                outcome = Outcome("retry", error=f"{type(exc).__name__}: {exc}")
        if refusals:
            outcome = Outcome("failed", error=refusals[0])
        if outcome.error:
            outcome = Outcome(
                outcome.status, outcome.response_code, sanitize(outcome.error, secrets), outcome.retry_after
            )
        return outcome

    def _send(
        self, destination_type: str, destination: Mapping[str, Any], payload: Mapping[str, Any], key: uuid.UUID
    ) -> Outcome:
        if destination_type == "webhook":
            body = orjson.dumps(payload)
            headers = {str(k): str(v) for k, v in (destination.get("headers") or {}).items()}
            secret = destination.get("secret")
            if secret:
                digest = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
                headers[SIGNATURE_HEADER] = f"sha256={digest}"
            return self._post(str(destination["url"]), body, headers, key)
        if destination_type in ("slack", "discord", "teams"):
            render = {"slack": slack_body, "discord": discord_body, "teams": teams_body}[destination_type]
            return self._post(str(destination["url"]), orjson.dumps(render(describe(payload))), {}, key)
        if destination_type == "email":
            return self._email(list(destination.get("to") or []), payload, key)
        if destination_type == "apprise":
            return self._apprise(str(destination["url"]), payload)
        return Outcome("failed", error=f"unknown destination type {destination_type!r}")

    # --- HTTP --------------------------------------------------------------------------------

    def _post(self, url: str, body: bytes, extra_headers: Mapping[str, str], key: uuid.UUID) -> Outcome:
        headers = {
            **{
                k: v for k, v in extra_headers.items() if k.lower() not in RESERVED_HEADERS - {SIGNATURE_HEADER.lower()}
            },
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "Idempotency-Key": str(key),
        }
        timeout = self.options.timeout_seconds
        deadline = time.monotonic() + timeout
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(timeout), follow_redirects=True, max_redirects=_MAX_REDIRECTS, trust_env=False
                ) as client,
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                answer = self._read(response, deadline)
                return self._judge(response, answer)
        except httpx.TooManyRedirects:
            return Outcome("failed", error=f"redirected more than {_MAX_REDIRECTS} times")
        except httpx.UnsupportedProtocol as exc:
            return Outcome("failed", error=f"cannot follow: {exc}")
        except httpx.TimeoutException:
            return Outcome("retry", error=f"no answer within {timeout:g} seconds")
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, netguard.BlockedAddress) or isinstance(
                exc.__context__, netguard.BlockedAddress
            ):
                raise netguard.BlockedAddress(str(exc.__cause__ or exc.__context__)) from exc
            return Outcome("retry", error=_connection_error(exc))

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        kept = bytearray()
        for chunk in response.iter_bytes():
            kept.extend(chunk[: self.options.response_max_bytes - len(kept)])
            if len(kept) >= self.options.response_max_bytes or time.monotonic() > deadline:
                break  # enough to judge the answer by; the rest is not read
        return bytes(kept)

    def _judge(self, response: httpx.Response, answer: bytes) -> Outcome:
        code = response.status_code
        text = answer.decode("utf-8", errors="replace")[:_KEPT_ANSWER]
        if 200 <= code < 300:
            return Outcome("delivered", code)
        if code in _RETRY_STATUSES or code >= 500:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            return Outcome("retry", code, _answered(code, text), wait)
        if 300 <= code < 400:
            return Outcome("failed", code, f"HTTP {code}: redirected without a location to follow")
        return Outcome("failed", code, _answered(code, text))

    # --- email -------------------------------------------------------------------------------

    def _email(self, to: list[str], payload: Mapping[str, Any], key: uuid.UUID) -> Outcome:
        smtp = self.options.smtp
        if smtp is None:
            return Outcome("failed", error="email is not set up on this server (TRAPLINE_SMTP_HOST)")
        if not to:
            return Outcome("failed", error="no recipients")
        subject, text, html = email_parts(describe(payload))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = smtp.sender
        message["To"] = ", ".join(to)
        message["Date"] = email.utils.formatdate(localtime=False)
        # The same on every attempt: mail clients show a message with a known id once.
        message["Message-ID"] = f"<{key}@trapline>"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        timeout = self.options.timeout_seconds
        try:
            client: smtplib.SMTP
            if smtp.security == "tls":
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
            with client:
                if smtp.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.username:
                    client.login(smtp.username, smtp.password)
                refused = client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            words = f"SMTP refused the recipients: {exc.recipients}"
            if codes and all(400 <= code < 500 for code in codes):
                return Outcome("retry", codes[0], words)
            return Outcome("failed", codes[0] if codes else None, words)
        except smtplib.SMTPResponseException as exc:
            detail = (
                exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            )
            if 400 <= exc.smtp_code < 500:
                return Outcome("retry", exc.smtp_code, f"SMTP {exc.smtp_code}: {detail}")
            return Outcome("failed", exc.smtp_code, f"SMTP {exc.smtp_code}: {detail}")
        except smtplib.SMTPNotSupportedError as exc:
            return Outcome("failed", error=f"SMTP: {exc}")
        except (smtplib.SMTPException, OSError) as exc:
            if isinstance(exc, netguard.BlockedAddress):
                raise
            return Outcome("retry", error=f"SMTP: {_connection_error(exc)}")
        if refused:
            return Outcome("failed", error=f"SMTP refused some recipients: {refused}")
        return Outcome("delivered", 250)

    # --- the long tail, through apprise ---------------------------------------------------------

    def _apprise(self, url: str, payload: Mapping[str, Any]) -> Outcome:
        import apprise  # imported when used: it loads a plugin per service

        rendered = describe(payload)
        # The service's plugin itself, not apprise.Apprise(), which may send from a pool of
        # its own threads: the address guard is this thread's.
        plugin = apprise.Apprise.instantiate(url)
        if not plugin:
            return Outcome("failed", error="apprise does not understand this URL")
        with self._apprise_lock, apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            ok = plugin.notify(body=rendered.text, title=rendered.title)
            problems = captured.getvalue().strip()
        if ok:
            return Outcome("delivered")
        return Outcome("retry", error=f"apprise: {problems.splitlines()[-1] if problems else 'the service refused'}")


def _answered(code: int, text: str) -> str:
    return f"HTTP {code}: {text.strip()}" if text.strip() else f"HTTP {code}"


def _connection_error(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _secrets_of(destination: Mapping[str, Any]) -> list[str]:
    found = [str(destination.get(key) or "") for key in ("url", "secret")]
    found.extend(str(value) for value in (destination.get("headers") or {}).values())
    return [value for value in found if value]
