"""Sentry's ingestion protocol: apps instrumented with Sentry's SDKs report into the same issues.

``auth`` (DSNs and the keys SDKs present), ``envelope`` (the wire format), ``mapping`` (a Sentry
event as a PostHog ``$exception`` event, pure), ``endpoint`` (``/api/<id>/envelope/`` and
``/store/``, answered on plain ASGI like PostHog's capture).
"""
