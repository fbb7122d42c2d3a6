"""Ingestion: PostHog capture requests in, events out."""
