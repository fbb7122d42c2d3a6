"""Retention: old events, parked requests, finished deliveries and stale placeholders go.

``policy`` decides the cut-offs from the settings and the time (pure); ``purge`` holds the
statements, each deleting a bounded number of rows; ``runner`` runs a pass a transaction at a
time, paced and one at a time per database, for the workers' loop. Issue totals (occurrences,
first and last seen) are running totals on ``issue_fingerprint``: deleting events leaves them
as they are. SQLite's freed pages go back to the file system through ``db.vacuum``.
"""

from __future__ import annotations

from trapline.retention.policy import RetentionOptions, retention_options
from trapline.retention.runner import Purged, Retention, purge_pass

__all__ = ["Purged", "Retention", "RetentionOptions", "purge_pass", "retention_options"]
