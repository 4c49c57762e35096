"""Fetch: read accepted audio only, bounded in size, checked against the delivered sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pipeline.reasons import Reason


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


def fetch(location: str, expected_sha256: str | None, max_bytes: int) -> Fetched:
    """Read a local audio file; remote locations arrive with the connectors issue."""
    parsed = urlparse(location)
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
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise FetchError(
            Reason.AUDIO_CHECKSUM_MISMATCH,
            f"{path}: sha256 {digest[:12]}… but the record says {expected_sha256[:12]}…",
        )
    return Fetched(path, data, digest)
