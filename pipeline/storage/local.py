"""A write-once object store in a local folder, for development, tests and single machines."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import google_crc32c

from pipeline.storage.base import (
    ObjectInfo,
    ObjectStore,
    StoredObject,
    describe,
    encode_crc32c,
    validate_key,
    validate_prefix,
)
from pipeline.storage.errors import ObjectExists, ObjectNotFound, ObjectTooLarge, StoreError

TMP_PREFIX = ".corpus-tmp-"


class LocalStore(ObjectStore):
    """Objects are files under ``root``; the key is the path relative to it.

    Writes go to a hidden temp file in the destination folder, are fsynced, then hard-linked
    to the final name. ``link`` refuses to replace an existing name, which makes the
    write-once check atomic, and a writer killed mid-write leaves at most a temp file
    (ignored by ``list``) instead of a truncated object under the real key. A folder has no
    place for ``content_type``, so it is not recorded.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self._root)!r})"

    @property
    def uri(self) -> str:
        return str(self._root)

    def url(self, key: str) -> str:
        return str(self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> StoredObject:
        path = self._path(key)
        sha256, crc, size = hashlib.sha256(), 0, 0
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    sha256.update(chunk)
                    crc = google_crc32c.extend(crc, chunk)
                    size += len(chunk)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object at {path}") from None
        except OSError as exc:
            raise StoreError(f"could not read {path}: {exc}") from exc
        return StoredObject(
            key=key, size=size, crc32c=encode_crc32c(crc), sha256=sha256.hexdigest()
        )

    def info(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            if not path.is_file():
                raise FileNotFoundError(path)
            stat = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"no object at {path}") from None
        except OSError as exc:
            raise StoreError(f"could not read {path}: {exc}") from exc
        return ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC), None)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as f:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object at {path}") from None
        except OSError as exc:
            raise StoreError(f"could not read {path}: {exc}") from exc
        if max_bytes is not None and len(data) > max_bytes:
            raise ObjectTooLarge(f"{path}: more than {max_bytes} bytes")
        return data

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ObjectNotFound(f"no object at {path}") from None
        except OSError as exc:
            raise StoreError(f"could not delete {path}: {exc}") from exc

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        path = self._path(key)
        if path.is_dir():
            raise StoreError(f"cannot store {path}: a folder of other objects has that name")
        if path.exists():
            raise ObjectExists(f"object already exists at {path}")
        stored = describe(key, data)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._write_temp(path.parent, data)
        except OSError as exc:
            raise StoreError(f"could not write {path}: {exc}") from exc
        try:
            os.link(tmp, path)
            _fsync_dir(path.parent)
        except FileExistsError:
            raise ObjectExists(f"object already exists at {path}") from None
        except OSError as exc:
            raise StoreError(f"could not write {path}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return stored

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        folder = self._root.joinpath(*prefix.split("/")[:-1])
        keys = []
        for dirpath, _dirs, files in os.walk(folder):
            rel = Path(dirpath).relative_to(self._root).as_posix()
            for name in files:
                if name.startswith(TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def _path(self, key: str) -> Path:
        segments = validate_key(key).split("/")
        if any(s.startswith(TMP_PREFIX) for s in segments):
            raise ValueError(f"invalid object key {key!r}: {TMP_PREFIX!r} names are reserved")
        return self._root.joinpath(*segments)

    @staticmethod
    def _write_temp(folder: Path, data: bytes) -> Path:
        tmp = folder / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp


def _fsync_dir(folder: Path) -> None:
    """Persist the new directory entry, so a power cut cannot lose an acknowledged object."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)
