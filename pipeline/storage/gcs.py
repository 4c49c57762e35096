"""A write-once object store in Google Cloud Storage, or in an emulator for tests.

``google.cloud.storage`` is imported only when a store first talks to GCS, so importing
``pipeline.storage`` stays cheap and works on machines without GCS configured.

Write-once rests on the server: every upload carries ``ifGenerationMatch=0``, which GCS
enforces atomically, so two racing writers cannot both succeed. Objects up to
``SINGLE_REQUEST_LIMIT`` go up in one multipart request. Larger ones use a resumable upload,
and fake-gcs-server (1.54) ignores the precondition there, so for those ``put`` also checks
``exists`` first: against the emulator that narrows the race window but does not close it;
against real GCS the precondition still holds.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from pipeline.storage.base import (
    ObjectInfo,
    ObjectStore,
    StoredObject,
    describe,
    validate_key,
    validate_prefix,
)
from pipeline.storage.errors import (
    ChecksumMismatch,
    ObjectExists,
    ObjectNotFound,
    ObjectTooLarge,
    StoreError,
)

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.storage import Blob, Bucket, Client

DEFAULT_EMULATOR_PROJECT = "corpus-local"
SINGLE_REQUEST_LIMIT = 8 * 1024 * 1024  # google.cloud.storage.blob._MAX_MULTIPART_SIZE
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/prefix`` into bucket and prefix (``""`` when there is none)."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    prefix = prefix.removesuffix("/")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ValueError(f"invalid bucket name in {uri!r}")
    if prefix:
        try:
            validate_key(prefix)
        except ValueError as exc:
            raise ValueError(f"invalid prefix in {uri!r}: {exc}") from None
    return bucket, prefix


def client_from_env() -> Client:
    """A client for real GCS (application default credentials) or, when
    ``STORAGE_EMULATOR_HOST`` is set, an anonymous one for the emulator."""
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_EMULATOR_PROJECT
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client()


class GCSStore(ObjectStore):
    """Objects are ``gs://bucket/prefix/<key>``.

    ``retry`` defaults to the library's ``DEFAULT_RETRY`` for every call, uploads included:
    they are conditional on ``ifGenerationMatch=0``, so a retry can never overwrite. The
    flip side: if a retried upload's first attempt did land, the retry sees 412 and ``put``
    raises ObjectExists for an object it wrote itself.
    """

    def __init__(
        self,
        uri: str,
        client: Client | None = None,
        *,
        retry: Retry | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._bucket_name, self._prefix = parse_gs_uri(uri)
        self._client = client
        self._retry = retry
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"GCSStore({self.uri!r})"

    @property
    def uri(self) -> str:
        return f"gs://{self._bucket_name}/{self._prefix}" if self._prefix else self._root

    def url(self, key: str) -> str:
        return f"{self._root}/{self._name(key)}"

    def exists(self, key: str) -> bool:
        blob = self._bucket.blob(self._name(key))
        with self._errors(self.url(key)):
            return blob.exists(retry=self._retry_policy, timeout=self._timeout)

    def stat(self, key: str) -> StoredObject:
        """The sha256 is the one ``put`` saved in the object's metadata; objects written by
        other tools lack it and are downloaded once to compute it."""
        with self._errors(self.url(key), missing=ObjectNotFound):
            blob = self._bucket.get_blob(
                self._name(key), retry=self._retry_policy, timeout=self._timeout
            )
        if blob is None:
            raise ObjectNotFound(f"not found: {self.url(key)}")
        sha256 = (blob.metadata or {}).get("sha256") or hashlib.sha256(self.get(key)).hexdigest()
        return StoredObject(key=key, size=blob.size, crc32c=blob.crc32c, sha256=sha256)

    def info(self, key: str) -> ObjectInfo:
        with self._errors(self.url(key), missing=ObjectNotFound):
            blob = self._bucket.get_blob(
                self._name(key), retry=self._retry_policy, timeout=self._timeout
            )
        if blob is None:
            raise ObjectNotFound(f"not found: {self.url(key)}")
        return ObjectInfo(key, blob.size, blob.time_created, blob.crc32c)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """With `max_bytes`, the object's size is looked up first and the download pinned to
        that generation, so nothing larger is ever read, and a replaced object is an error."""
        if max_bytes is None:
            blob = self._bucket.blob(self._name(key))
            with self._errors(self.url(key), missing=ObjectNotFound):
                return blob.download_as_bytes(
                    checksum="crc32c", retry=self._retry_policy, timeout=self._timeout
                )
        with self._errors(self.url(key), missing=ObjectNotFound):
            blob = self._bucket.get_blob(
                self._name(key), retry=self._retry_policy, timeout=self._timeout
            )
        if blob is None:
            raise ObjectNotFound(f"not found: {self.url(key)}")
        if blob.size > max_bytes:
            raise ObjectTooLarge(f"{self.url(key)}: {blob.size} bytes > {max_bytes}")
        changed = StoreError(f"{self.url(key)} was replaced while it was read")
        with self._errors(self.url(key), missing=ObjectNotFound, precondition=changed):
            return blob.download_as_bytes(
                checksum="crc32c",
                if_generation_match=blob.generation,
                retry=self._retry_policy,
                timeout=self._timeout,
            )

    def delete(self, key: str) -> None:
        blob = self._bucket.blob(self._name(key))
        with self._errors(self.url(key), missing=ObjectNotFound):
            blob.delete(retry=self._retry_policy, timeout=self._timeout)

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        blob = self._bucket.blob(self._name(key))
        if len(data) > SINGLE_REQUEST_LIMIT and self.exists(key):
            raise ObjectExists(f"object already exists at {self.url(key)}")
        return self._upload(blob, key, data, content_type)

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        root = f"{self._prefix}/" if self._prefix else ""
        with self._errors(f"{self._root}/{root}{prefix}"):
            blobs = self._client_or_default.list_blobs(
                self._bucket_name,
                prefix=root + prefix,
                retry=self._retry_policy,
                timeout=self._timeout,
            )
            return sorted(blob.name.removeprefix(root) for blob in blobs)

    def _upload(self, blob: Blob, key: str, data: bytes, content_type: str) -> StoredObject:
        """Create ``blob`` only if absent, trusting the server's precondition alone."""
        stored = describe(key, data)
        blob.metadata = {"sha256": stored.sha256}
        with self._errors(self.url(key)):
            blob.upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=0,
                checksum="crc32c",
                crc32c_checksum_value=stored.crc32c,
                retry=self._retry_policy,
                timeout=self._timeout,
            )
        if blob.crc32c != stored.crc32c:
            self._discard(blob)
            raise ChecksumMismatch(
                f"{self.url(key)}: sent crc32c {stored.crc32c}, store reports {blob.crc32c}; "
                "the corrupt upload was deleted"
            )
        return stored

    def _discard(self, blob: Blob) -> None:
        """Delete exactly the generation we wrote, so the key is free for a clean retry."""
        from google.api_core.exceptions import GoogleAPICallError

        with suppress(GoogleAPICallError):
            blob.delete(if_generation_match=blob.generation, timeout=self._timeout)

    @contextmanager
    def _errors(
        self,
        location: str,
        missing: type[StoreError] = StoreError,
        precondition: StoreError | None = None,
    ) -> Iterator[None]:
        """Translate library exceptions into store errors that name the location. A failed
        precondition means the key was taken (a write) unless `precondition` says otherwise."""
        import requests
        from google.api_core import exceptions as gx
        from google.cloud.storage.exceptions import DataCorruption

        try:
            yield
        except gx.PreconditionFailed as exc:
            raise precondition or ObjectExists(f"object already exists at {location}") from exc
        except gx.NotFound as exc:
            raise missing(f"not found: {location}") from exc
        except DataCorruption as exc:
            raise ChecksumMismatch(f"{location}: {exc}") from exc
        except (gx.GoogleAPICallError, gx.RetryError, requests.RequestException) as exc:
            raise StoreError(f"{location}: {exc}") from exc

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    @property
    def _root(self) -> str:
        return f"gs://{self._bucket_name}"

    @property
    def _client_or_default(self) -> Client:
        if self._client is None:
            self._client = client_from_env()
        return self._client

    @property
    def _bucket(self) -> Bucket:
        return self._client_or_default.bucket(self._bucket_name)

    @property
    def _retry_policy(self) -> Retry:
        if self._retry is None:
            from google.cloud.storage.retry import DEFAULT_RETRY

            self._retry = DEFAULT_RETRY
        return self._retry
