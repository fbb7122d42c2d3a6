"""Accepted events: the durable ingest queue and the stored, processed exception events."""
