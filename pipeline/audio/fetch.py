"""Fetch: read accepted audio only, bounded in size, checked against the delivered checksums.

What is read is hashed with sha256 and, when the partner delivered another checksum (a
`hash_sum` such as a DDEX MD5 `HashSum`), with that algorithm too; either mismatch is
`AUDIO_CHECKSUM_MISMATCH`. This is the only place delivered audio is checked, so audio of an
item the licence refuses is never read.

Local paths are read in place. `http(s)://` and `gs://` audio is fetched only from hosts
(buckets, for gs://) in the `allowed_hosts` the caller passes, typically the partner's
`allowed_audio_hosts`; without a list nothing remote is fetched. Downloads stream with a
timeout on every request, stop as soon as `max_bytes` is passed, follow redirects only to
allowed hosts, and land in a temporary file so `Fetched.path` is something a decoder can
open. The caller owns that file: call `Fetched.release()` (or use `with fetch(...) as f:`)
when done; `Fetched.temporary` says whether there is anything to delete.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlparse

from pipeline.reasons import Reason

TIMEOUT_S = 30.0
MAX_REDIRECTS = 5
MAX_SECONDS = 900.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class FetchError(Exception):
    """An item's audio cannot be used; carries the reason code."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    path: Path
    data: bytes
    sha256: str
    temporary: bool = False

    def release(self) -> None:
        """Delete the temporary copy of a remote file; a local original is left alone."""
        if self.temporary:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Fetched:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def fetch(
    location: str,
    expected_sha256: str | None,
    max_bytes: int,
    allowed_hosts: list[str] | tuple[str, ...] | None = None,
    timeout_s: float = TIMEOUT_S,
    hash_sum: Mapping[str, str] | None = None,
) -> Fetched:
    """The audio at `location` (a local path, file://, http(s):// or gs:// URI), checked
    against `expected_sha256` and `hash_sum` (`{"algorithm": "md5", "value": hex}`)."""
    parsed = urlparse(location)
    if parsed.scheme in ("http", "https", "gs"):
        if not host_allowed(location, allowed_hosts):
            raise FetchError(
                Reason.AUDIO_MISSING,
                f"{location}: host {parsed.netloc!r} is not in the partner's allowed_audio_hosts",
            )
        if parsed.scheme == "gs":
            data = _gcs(location, max_bytes)
        else:
            data = _http(location, max_bytes, allowed_hosts or (), timeout_s)
        return _checked_copy(location, data, expected_sha256, hash_sum)
    if parsed.scheme not in ("", "file"):
        raise FetchError(Reason.AUDIO_MISSING, f"{location}: scheme {parsed.scheme!r} not fetched")
    path = Path(parsed.path if parsed.scheme else location)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FetchError(Reason.AUDIO_MISSING, f"{path}: not a regular file")
        if size > max_bytes:
            raise FetchError(Reason.AUDIO_UNDECODABLE, f"{path}: {size} bytes > {max_bytes}")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise FetchError(Reason.AUDIO_MISSING, f"{path}: no such file") from exc
    except OSError as exc:
        raise FetchError(Reason.AUDIO_MISSING, f"{path}: {exc.strerror}") from exc
    return Fetched(path, data, _verify(str(path), data, expected_sha256, hash_sum))


def host_allowed(url: str, allowed_hosts: list[str] | tuple[str, ...] | None) -> bool:
    """True when the URL's host (or host:port) is listed; gs:// URLs are matched by bucket."""
    parsed = urlparse(url)
    if not allowed_hosts or not parsed.hostname:
        return False
    allowed = {h.strip().lower().removeprefix("gs://").rstrip("/") for h in allowed_hosts}
    host = parsed.hostname.lower()
    return host in allowed or (parsed.port is not None and f"{host}:{parsed.port}" in allowed)


def _verify(
    where: str, data: bytes, expected_sha256: str | None, hash_sum: Mapping[str, str] | None = None
) -> str:
    """The sha256 of `data`, after checking it and the delivered hash sum, if any."""
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise FetchError(
            Reason.AUDIO_CHECKSUM_MISMATCH,
            f"{where}: sha256 {digest[:12]}… but the record says {expected_sha256[:12]}…",
        )
    if hash_sum:
        algorithm, expected = hash_sum["algorithm"], hash_sum["value"].lower()
        try:
            actual = hashlib.new(algorithm, data).hexdigest()
        except ValueError as exc:
            raise FetchError(
                Reason.AUDIO_CHECKSUM_MISMATCH,
                f"{where}: the delivered {algorithm} hash sum cannot be checked: {exc}",
            ) from exc
        if actual != expected:
            raise FetchError(
                Reason.AUDIO_CHECKSUM_MISMATCH,
                f"{where}: {algorithm} {actual} but the delivered hash sum is {expected}",
            )
    return digest


def _checked_copy(
    location: str, data: bytes, expected_sha256: str | None, hash_sum: Mapping[str, str] | None
) -> Fetched:
    """Check, then keep a temporary copy named like the original so decoders see its suffix."""
    digest = _verify(location, data, expected_sha256, hash_sum)
    suffix = PurePosixPath(urlparse(location).path).suffix[:16]
    handle, name = tempfile.mkstemp(prefix="corpus-fetch-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise FetchError(Reason.AUDIO_MISSING, f"{location}: cannot keep a copy: {exc}") from exc
    return Fetched(Path(name), data, digest, temporary=True)


def _http(url: str, max_bytes: int, allowed_hosts, timeout_s: float) -> bytes:
    """Stream `url` into memory, refusing more than `max_bytes` and redirects off the list."""
    import httpx

    deadline = time.monotonic() + MAX_SECONDS
    with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            if urlparse(url).scheme == "http" and urlparse(url).hostname not in LOOPBACK:
                raise FetchError(Reason.AUDIO_MISSING, f"{url}: plain http is only for loopback")
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        target = urljoin(url, response.headers.get("location", ""))
                        if not host_allowed(target, allowed_hosts):
                            raise FetchError(
                                Reason.AUDIO_MISSING,
                                f"{url}: redirect to {urlparse(target).netloc!r}, "
                                "which is not an allowed audio host",
                            )
                        url = target
                        continue
                    if response.status_code != 200:
                        raise FetchError(
                            Reason.AUDIO_MISSING, f"{url}: HTTP {response.status_code}"
                        )
                    return _body(url, response, max_bytes, deadline)
            except httpx.HTTPError as exc:
                raise FetchError(
                    Reason.AUDIO_MISSING, f"{url}: {type(exc).__name__}: {exc}"
                ) from exc
    raise FetchError(Reason.AUDIO_MISSING, f"{url}: more than {MAX_REDIRECTS} redirects")


def _body(url: str, response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(Reason.AUDIO_UNDECODABLE, f"{url}: {declared} bytes > {max_bytes}")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(Reason.AUDIO_UNDECODABLE, f"{url}: more than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchError(Reason.AUDIO_MISSING, f"{url}: download took over {MAX_SECONDS} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _gcs(location: str, max_bytes: int) -> bytes:
    """Read through the object store of the parent prefix (GCS credentials from the env)."""
    from pipeline.storage import ObjectNotFound, ObjectTooLarge, StoreError, open_store

    parent, _, name = location.rstrip("/").rpartition("/")
    try:
        return open_store(parent).get(name, max_bytes=max_bytes)
    except ObjectNotFound as exc:
        raise FetchError(Reason.AUDIO_MISSING, f"{location}: no such object") from exc
    except ObjectTooLarge as exc:
        raise FetchError(Reason.AUDIO_UNDECODABLE, str(exc)) from exc
    except (StoreError, ValueError) as exc:
        raise FetchError(Reason.AUDIO_MISSING, f"{location}: {exc}") from exc
