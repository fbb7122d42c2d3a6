"""Usage: events stored and dropped per project and day, queue depth, storage sizes."""
