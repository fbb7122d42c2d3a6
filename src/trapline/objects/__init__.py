"""Object storage (uploaded symbol sets) behind one narrow interface: see ``store.py``."""

from __future__ import annotations

from trapline.objects.store import InvalidKey, ObjectStore, ObjectStoreError, PresignedPost, open_store

__all__ = ["InvalidKey", "ObjectStore", "ObjectStoreError", "PresignedPost", "open_store"]
