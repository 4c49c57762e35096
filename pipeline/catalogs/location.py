"""Where a file-based delivery is, presented the same way to every connector.

A partner's `location` is a local folder or file (a plain path or a `file://` URI), or a
`gs://bucket/prefix` naming a prefix "folder" or a single object. `open_delivery` gives the
manifest, CSV and DDEX connectors one interface:

- `root`: what `RawRecord.root` holds; relative audio references are resolved against it by
  `normalise.resolve_audio` (an absolute path, or `gs://bucket/key`), which refuses
  references that escape it (`..`, absolute paths, backslashes, NUL; locally, symlinks out);
- `files(pattern)`: the delivery's files matching the mapping's glob, in name order (`*`
  stays inside one folder, `**` spans any number); a single-file delivery is that file;
- `open(location)`: a binary stream that reads as it goes. A GCS object is read in ranged
  chunks of `CHUNK` bytes, pinned to the generation that was listed, so an object replaced
  meanwhile is never read half old, half new;
- `exists(location)`: whether an audio file is there, without reading it (a stat, or the
  object's listed metadata). Connectors never read audio: the fetch stage does, and only for
  items whose licence is admitted.

A `DeliveryFile.location` (the local path, or the `gs://` URI of the object) is what
connectors put in an InvalidRecord's source. Object-store failures (no access, network,
an object deleted while read) raise `DeliveryError`: a delivery that cannot be read stops
the refresh instead of turning its records into invalid ones.
"""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING
from urllib.parse import urlparse

from pipeline.catalogs.normalise import resolve_audio

if TYPE_CHECKING:
    from google.cloud.storage import Blob, Client

CHUNK = 1 << 20


class DeliveryError(RuntimeError):
    """The delivery's store cannot be read (permissions, network, object gone meanwhile)."""


@dataclass(frozen=True)
class DeliveryFile:
    name: str  # relative to the delivery root, '/'-separated
    location: str  # a local path or gs://bucket/key


class Delivery:
    root: str

    def files(self, pattern: str) -> list[DeliveryFile]:
        raise NotImplementedError

    def open(self, location: str) -> IO[bytes]:
        raise NotImplementedError

    def exists(self, location: str) -> bool:
        raise NotImplementedError

    def stamp(self, file: DeliveryFile) -> str | None:
        """What changes whenever the file does, from its metadata (nothing read): size and
        modification time, or a gs:// object's generation and size; None when unknown."""
        raise NotImplementedError

    def resolve(self, reference: str) -> str:
        """The absolute location of a delivery-relative reference; ValueError if it escapes."""
        return resolve_audio(self.root, reference)


def open_delivery(location: str, connector: str) -> Delivery:
    """The delivery at `location`; FileNotFoundError when there is nothing there."""
    parsed = urlparse(location)
    if parsed.scheme == "gs":
        return GcsDelivery(location)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) > 1:
        raise ValueError(
            f"{location}: the {connector} connector reads local (file://) and gs:// deliveries only"
        )
    root = Path(parsed.path if parsed.scheme == "file" else location)
    if not root.exists():
        raise FileNotFoundError(f"{root}: the delivery does not exist")
    return LocalDelivery(root)


class LocalDelivery(Delivery):
    def __init__(self, path: Path):
        self._single = None if path.is_dir() else path
        self._root = path if self._single is None else path.parent
        self.root = str(self._root)

    def files(self, pattern: str) -> list[DeliveryFile]:
        found = [self._single] if self._single else self._root.glob(pattern)
        files = [
            DeliveryFile(p.relative_to(self._root).as_posix(), str(p)) for p in found if p.is_file()
        ]
        return sorted(files, key=_name_order)

    def open(self, location: str) -> IO[bytes]:
        return open(location, "rb")

    def exists(self, location: str) -> bool:
        try:
            return Path(location).is_file()
        except OSError:
            return False

    def stamp(self, file: DeliveryFile) -> str | None:
        try:
            stat = os.stat(file.location)
        except OSError:
            return None
        return f"{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class _Meta:
    size: int | None
    generation: int | None


class GcsDelivery(Delivery):
    """A gs:// prefix (every object below `prefix/`) or a single object. Listing keeps each
    object's size and generation, so `exists` after `files` costs no request."""

    def __init__(self, location: str, client: Client | None = None):
        self._bucket_name, prefix = split_gs(location)
        self._client = client or gcs_client()
        self._bucket = self._client.bucket(self._bucket_name)
        self._seen: dict[str, _Meta] = {}
        self._single: str | None = None
        if prefix and not location.endswith("/") and self._get(prefix) is not None:
            self._single, self._prefix = prefix, posixpath.dirname(prefix)
        else:
            self._prefix = prefix
            if not self._list(self._base, None, max_results=1, placeholders=True):
                raise FileNotFoundError(f"{location}: the delivery does not exist (no objects)")
        self.root = f"gs://{self._bucket_name}" + (f"/{self._prefix}" if self._prefix else "")

    @property
    def _base(self) -> str:
        return f"{self._prefix}/" if self._prefix else ""

    def files(self, pattern: str) -> list[DeliveryFile]:
        if self._single is not None:
            names = [self._single]
        else:
            fixed, delimiter = _listing(pattern)
            names = [
                name
                for name in self._list(self._base + fixed, delimiter)
                if _glob_match(name.removeprefix(self._base), pattern)
            ]
        files = [
            DeliveryFile(name.removeprefix(self._base), f"gs://{self._bucket_name}/{name}")
            for name in names
        ]
        return sorted(files, key=_name_order)

    def open(self, location: str) -> IO[bytes]:
        bucket, key = split_gs(location)
        meta = self._seen.get(key) if bucket == self._bucket_name else None
        blob = self._client.bucket(bucket).blob(key, generation=meta and meta.generation)
        with _errors(location):
            reader = blob.open("rb", chunk_size=CHUNK)
        return io.BufferedReader(_ObjectStream(reader, location))

    def exists(self, location: str) -> bool:
        bucket, key = split_gs(location)
        if bucket != self._bucket_name or not key:
            return False
        return (self._seen.get(key) or self._get(key)) is not None

    def stamp(self, file: DeliveryFile) -> str | None:
        _, key = split_gs(file.location)
        meta = self._seen.get(key) or self._get(key)
        return None if meta is None else f"gs:{meta.generation}:{meta.size}"

    def _get(self, key: str) -> _Meta | None:
        with _errors(f"gs://{self._bucket_name}/{key}"):
            blob = self._bucket.get_blob(key)
        return None if blob is None else self._keep(blob)

    def _list(
        self,
        prefix: str,
        delimiter: str | None,
        max_results: int | None = None,
        placeholders: bool = False,
    ) -> list[str]:
        """Object names under `prefix`; folder placeholders (`name/`) only if asked."""
        with _errors(f"gs://{self._bucket_name}/{prefix}"):
            blobs = self._client.list_blobs(
                self._bucket_name, prefix=prefix, delimiter=delimiter, max_results=max_results
            )
            names = []
            for blob in blobs:
                if placeholders or not blob.name.endswith("/"):
                    self._keep(blob)
                    names.append(blob.name)
        return names

    def _keep(self, blob: Blob) -> _Meta:
        meta = _Meta(blob.size, blob.generation)
        self._seen[blob.name] = meta
        return meta


class _ObjectStream(io.RawIOBase):
    """A GCS BlobReader as a raw stream whose failures name the object."""

    def __init__(self, reader: IO[bytes], location: str):
        self._reader, self._location = reader, location

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with _errors(self._location):
            data = self._reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


@contextmanager
def _errors(location: str) -> Iterator[None]:
    """Turn google / requests failures into DeliveryError naming the location."""
    import requests
    from google.api_core import exceptions as gx
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except (gx.GoogleAPIError, GoogleAuthError, requests.RequestException) as exc:
        raise DeliveryError(f"{location}: cannot read the delivery: {exc}") from exc


def split_gs(location: str) -> tuple[str, str]:
    """(bucket, key) of `gs://bucket/key`; the key may be empty. Not URL-parsed, so object
    names keep their `#` and `?`."""
    if not location.startswith("gs://"):
        raise ValueError(f"not a gs:// location: {location!r}")
    bucket, _, key = location.removeprefix("gs://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {location!r}")
    return bucket, key.strip("/")


def gcs_client() -> Client:
    """A client for GCS or, with STORAGE_EMULATOR_HOST set, the emulator; one per setting."""
    return _client(os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("GOOGLE_CLOUD_PROJECT"))


@lru_cache(maxsize=4)
def _client(emulator: str | None, project: str | None) -> Client:
    from pipeline.storage.gcs import client_from_env

    return client_from_env()


def object_stamp(location: str) -> str | None:
    """`gs:<generation>:<size>` of a gs:// object from its metadata (nothing downloaded),
    `missing` when there is no such object, None when the store cannot be asked."""
    try:
        bucket, key = split_gs(location)
        if not key:
            return "missing"
        with _errors(location):
            blob = gcs_client().bucket(bucket).get_blob(key)
    except (ValueError, DeliveryError):
        return None
    if blob is None:
        return "missing"
    return f"gs:{blob.generation}:{blob.size}"


def _name_order(file: DeliveryFile) -> tuple[str, ...]:
    return PurePosixPath(file.name).parts


def _listing(pattern: str) -> tuple[str, str | None]:
    """(literal folder prefix of the pattern, delimiter): list no more than the glob can match."""
    parts = pattern.strip("/").split("/")
    fixed = []
    for part in parts[:-1]:
        if part == "**" or _magic(part):
            break
        fixed.append(part)
    rest = parts[len(fixed) :]
    prefix = "".join(f"{p}/" for p in fixed)
    return prefix, ("/" if len(rest) == 1 and rest[0] != "**" else None)


def _magic(part: str) -> bool:
    return any(c in part for c in "*?[")


def _glob_match(name: str, pattern: str) -> bool:
    """`name` matches `pattern` as Path.glob would: segment by segment, `**` any depth."""
    return _match(name.split("/"), pattern.strip("/").split("/"))


def _match(names: list[str], parts: list[str]) -> bool:
    if not parts:
        return not names
    if parts[0] == "**":
        return any(_match(names[i:], parts[1:]) for i in range(len(names) + 1))
    return bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and _match(names[1:], parts[1:])
