"""Where corpora are written: one write-once object-store interface, local folder or GCS.

``open_store()`` picks the backend from a location, so code and configs name a place
(``/data/store``, ``gs://bucket/prefix``) rather than a class.
"""

from __future__ import annotations

from pipeline.storage.base import ObjectInfo, ObjectStore, StoredObject, validate_key
from pipeline.storage.errors import (
    ChecksumMismatch,
    ObjectExists,
    ObjectNotFound,
    ObjectTooLarge,
    StoreError,
)
from pipeline.storage.gcs import GCSStore
from pipeline.storage.local import LocalStore

__all__ = [
    "ChecksumMismatch",
    "GCSStore",
    "LocalStore",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectTooLarge",
    "StoreError",
    "StoredObject",
    "default_location",
    "open_store",
    "validate_key",
]


def default_location() -> str:
    """The store the settings name (`pipeline.config.store_location`)."""
    from pipeline.config import store_location

    return store_location()


def open_store(location: str | None = None) -> ObjectStore:
    """``gs://bucket/prefix`` opens a GCSStore; anything else is a local folder."""
    location = location or default_location()
    if location.startswith("gs://"):
        return GCSStore(location)
    return LocalStore(location)
