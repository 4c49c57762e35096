"""Transient MongoDB failures (a dropped connection, a primary stepping down, a server
restarting) are retried with backoff for a bounded time, `CORPUS_MONGO_RETRY_SECONDS` (60 by
default). Every provenance write is an upsert, an insert or a delete keyed by a stable id, so
doing one twice changes nothing. Anything else, and a failure that outlasts the bound, is
raised: the command then says what failed in one line, and the run can be started again.
Not retried: iterating a `find` cursor (a read the command can simply do again) and the
collection setup in `collections.ensure_collections`."""

from __future__ import annotations

import functools
import os

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import AutoReconnect, OperationFailure
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

# ShutdownInProgress, PrimarySteppedDown, NotWritablePrimary, NotPrimaryNoSecondaryOk,
# NotPrimaryOrSecondary, InterruptedAtShutdown, InterruptedDueToReplStateChange, and the
# network ones (HostUnreachable, HostNotFound, NetworkTimeout, SocketException).
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436})
OPERATIONS = frozenset(
    {
        "aggregate",
        "bulk_write",
        "count_documents",
        "delete_many",
        "delete_one",
        "distinct",
        "find_one",
        "find_one_and_update",
        "insert_many",
        "update_many",
        "update_one",
    }
)


def transient(exc: BaseException) -> bool:
    if isinstance(exc, AutoReconnect):  # also NotPrimaryError, NetworkTimeout, no server
        return True
    if isinstance(exc, OperationFailure):
        return exc.code in TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    return False


def retry_seconds() -> float:
    return float(os.environ.get("CORPUS_MONGO_RETRY_SECONDS") or 60)


class RetryingCollection:
    """A collection whose operations are retried while they fail transiently."""

    def __init__(self, collection: Collection, seconds: float):
        self._collection, self._seconds = collection, seconds

    def __getattr__(self, name: str):
        attr = getattr(self._collection, name)
        if name not in OPERATIONS:
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            for attempt in Retrying(
                retry=retry_if_exception(transient),
                wait=wait_exponential(multiplier=0.25, max=8),
                stop=stop_after_delay(self._seconds),
                reraise=True,
            ):
                with attempt:
                    return attr(*args, **kwargs)

        return call


class RetryingDatabase:
    """A database whose collections are `RetryingCollection`s; the rest passes through."""

    def __init__(self, db: Database, seconds: float | None = None):
        self._db = db
        self._seconds = retry_seconds() if seconds is None else seconds
        self._collections: dict[str, RetryingCollection] = {}

    def __getattr__(self, name: str):
        value = getattr(self._db, name)
        if not isinstance(value, Collection):
            return value
        return self[name]

    def __getitem__(self, name: str) -> RetryingCollection:
        if name not in self._collections:
            self._collections[name] = RetryingCollection(self._db[name], self._seconds)
        return self._collections[name]
