"""Trapline: self-hosted error tracking that speaks PostHog's and Sentry's protocols."""

__version__ = "0.1.0"
