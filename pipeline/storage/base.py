"""The object-store contract shared by every backend, and the key rules that keep it portable."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import google_crc32c

MAX_KEY_BYTES = 1024  # the GCS object-name limit; local keys obey it too so stores stay swappable


@dataclass(frozen=True)
class StoredObject:
    """What was written, with the checksums that prove it."""

    key: str
    size: int
    crc32c: str  # base64 of the big-endian CRC32C, as GCS reports it
    sha256: str  # hex


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata: garbage collection keeps objects younger than its grace by
    `created`, whatever names them; commit checks `size` and `crc32c` of shards it reuses."""

    key: str
    size: int
    created: datetime  # UTC
    crc32c: str | None  # None where the store keeps none (a local folder)


@runtime_checkable
class ObjectStore(Protocol):
    """A write-once key/value store of bytes rooted at ``uri``.

    Keys are ``/``-separated paths relative to the root. A stored key is never overwritten,
    so a corpus once published cannot silently change under the people who trained on it.
    """

    @property
    def uri(self) -> str:
        """Root of the store: an absolute folder path or ``gs://bucket/prefix``."""
        ...

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        """Store ``data`` under ``key``; raise ObjectExists if the key is taken."""
        ...

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """Return the bytes under ``key``; raise ObjectNotFound if there are none, and
        ObjectTooLarge, having read no more than ``max_bytes``, if it holds more."""
        ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> StoredObject:
        """Size and checksums of the object under ``key``; raise ObjectNotFound if none."""
        ...

    def info(self, key: str) -> ObjectInfo:
        """What the store knows of the object under ``key`` without reading it; raise
        ObjectNotFound if there is none."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix`` (a plain string prefix), relative to the root, sorted."""
        ...

    def url(self, key: str) -> str:
        """Full location of ``key`` usable outside this code: absolute path or ``gs://`` URI."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (garbage collection only); raise ObjectNotFound if it is absent."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path, else raise ValueError naming it.

    Partner deliveries carry odd paths; rejecting them here keeps a key from escaping the
    root on disk or meaning different objects on different backends.
    """
    problem = _key_problem(key)
    if problem:
        raise ValueError(f"invalid object key {key!r}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can only match valid keys; its last segment may be partial."""
    problem = _key_problem(prefix + "x") if prefix else None
    if problem:
        raise ValueError(f"invalid key prefix {prefix!r}: {problem}")
    return prefix


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or not key:
        return "must be a non-empty string"
    if "\\" in key:
        return "backslashes are not allowed"
    if key.startswith("/"):
        return "must be relative, not absolute"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        return "control characters are not allowed"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    for segment in key.split("/"):
        if segment == "":
            return "empty path segment"
        if segment in (".", ".."):
            return f"'{segment}' segments are not allowed"
    return None


def crc32c_b64(data: bytes) -> str:
    """CRC32C of ``data`` in the encoding GCS uses: base64 of the 4 big-endian bytes."""
    return encode_crc32c(google_crc32c.value(data))


def encode_crc32c(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def describe(key: str, data: bytes) -> StoredObject:
    """The StoredObject that storing ``data`` under ``key`` must produce."""
    return StoredObject(
        key=key, size=len(data), crc32c=crc32c_b64(data), sha256=hashlib.sha256(data).hexdigest()
    )
