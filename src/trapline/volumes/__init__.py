"""Issue volume rollups: events per fingerprint per hour and per day, and per-day sketches of
the distinct users and sessions, kept in the pipeline's write transaction so that lists,
charts and ranged counts read buckets instead of scanning events."""
