"""Errors raised by object stores, so callers never depend on a backend's exceptions.

    Exception
    └── StoreError            any store failure; message names the object location
        ├── ObjectExists      write-once: the key is already taken, nothing was written
        ├── ObjectNotFound    the key holds no object
        ├── ObjectTooLarge    the object is larger than the reader allows; it was not read
        └── ChecksumMismatch  the stored bytes are not the bytes we sent

Bad keys are a caller bug, not a store failure, so they raise ``ValueError`` instead.
"""


class StoreError(Exception):
    """Base class for every object-store failure."""


class ObjectExists(StoreError):
    """The key already holds an object; corpora are write-once, so it was left untouched."""


class ObjectNotFound(StoreError):
    """The key holds no object."""


class ObjectTooLarge(StoreError):
    """The object holds more bytes than the reader allows; at most that many were read."""


class ChecksumMismatch(StoreError):
    """The store reported a checksum that differs from the one computed from our bytes."""
