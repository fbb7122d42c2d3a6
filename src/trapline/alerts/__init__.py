"""Alerts: who hears about new, reopened, spiking and frequent issues, and how.

``models`` (alerts, the outbox/delivery log, spike detector state), ``spikes`` and
``thresholds`` (the decisions, pure), ``messages`` (payloads and each destination's body,
pure), ``outbox`` (write, lease, record), ``senders`` (HTTP, SMTP, apprise, behind
``netguard``), ``dispatch`` (the sender thread of worker processes), ``service`` (the use cases
of the API and the UI). The pipeline's ``alerting`` stage decides what fires.
"""

from __future__ import annotations

from trapline.alerts.senders import SenderOptions, Senders, SmtpOptions
from trapline.settings import Settings

__all__ = ["make_senders"]


def make_senders(settings: Settings) -> Senders:
    """The process's senders, configured from the settings."""
    smtp = None
    if settings.smtp_host:
        smtp = SmtpOptions(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else "",
            sender=settings.smtp_sender,
        )
    return Senders(
        SenderOptions(
            allow_private=settings.alerts_allow_private_networks,
            timeout_seconds=settings.alerts_timeout_seconds,
            response_max_bytes=int(settings.alerts_response_max_size),
            smtp=smtp,
        )
    )
