"""From raw partner records to typed items: keys made unique, paths resolved, models built.

Connectors only read; every connector's records go through the same `normalise` so a
record is judged the same way whatever format it came in.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from pydantic import ValidationError

from pipeline.catalogs.models import IDENTIFIER, CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.strict_json import is_text
from pipeline.storage.base import validate_key


def resolve_audio(root: Path | str, audio: str) -> str:
    """Absolute location of `audio` (a local path, or `gs://bucket/key` under a gs:// root);
    URLs are returned as they are; raises ValueError when a path escapes the delivery."""
    parsed = urlparse(audio)
    if parsed.scheme == "file":
        audio = parsed.path
    elif parsed.scheme and len(parsed.scheme) > 1:
        return audio
    if audio.startswith("/") or "\\" in audio or "\x00" in audio:
        raise ValueError(f"audio path {audio!r} must be relative to the delivery root")
    if str(root).startswith("gs://"):
        return _object_location(str(root), audio)
    real_root = _real_path(str(root))
    resolved = os.path.realpath(os.path.join(real_root, audio))
    if resolved != real_root and not resolved.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ValueError(f"audio path {audio!r} escapes the delivery root")
    return resolved


@lru_cache(maxsize=64)
def _real_path(root: str) -> str:
    """The delivery root with its links resolved, once per root rather than per record."""
    return os.path.realpath(root)


def _object_location(root: str, audio: str) -> str:
    """`root/audio` with `.` and `..` folded by name (an object store has no links)."""
    relative = posixpath.normpath(audio)
    if relative == ".." or relative.startswith("../"):
        raise ValueError(f"audio path {audio!r} escapes the delivery root")
    if relative == ".":
        raise ValueError(f"audio path {audio!r} names no file")
    location = f"{root.rstrip('/')}/{relative}"
    _, _, key = location.removeprefix("gs://").partition("/")
    validate_key(key)
    return location


def record_key(raw: RawRecord, seen: set[str]) -> str:
    """The record's track id, made unique within the delivery (a repeat gets its line); one
    that is no usable identifier is replaced by its line, so it never reaches a key."""
    value = raw.data.get("track_id")
    usable = isinstance(value, str | int) and not id_problem(str(value))
    track_id = str(value) if usable else f"#line-{raw.line}"
    if f"{raw.partner}:{track_id}" in seen:
        track_id = f"{track_id}#line-{raw.line}"
    seen.add(f"{raw.partner}:{track_id}")
    return track_id


def normalise(
    raw: RawRecord, track_id: str, failed_expectations: list[str] | None = None
) -> CatalogItem | InvalidRecord:
    def invalid(message: str) -> InvalidRecord:
        return InvalidRecord(
            partner=raw.partner, track_id=track_id, source=raw.source, message=message, raw=raw.data
        )

    if failed_expectations:
        return invalid("failed expectations: " + "; ".join(failed_expectations))
    delivered = raw.data.get("track_id")
    if track_id != delivered:
        problem = id_problem(str(delivered)) if isinstance(delivered, str | int) else None
        if delivered is None or delivered == "":
            problem = "is missing"
        return invalid(f"track_id {str(delivered)[:100]!r} {problem or 'is repeated'}")
    if not is_text(raw.data):
        return InvalidRecord(
            partner=raw.partner,
            track_id=track_id,
            source=raw.source,
            message="a field holds something that is not text (an unpaired surrogate)",
            raw=json.dumps(raw.data, default=str)[:500],
        )
    record = dict(raw.data)
    try:
        if isinstance(record.get("audio"), str):
            record["audio"] = resolve_audio(raw.root, record["audio"])
        return CatalogItem.model_validate({**record, "partner": raw.partner, "source": raw.source})
    except (ValidationError, ValueError) as exc:
        return invalid(_short(exc))
    except Exception as exc:  # noqa: BLE001 - one odd record is invalid, never the batch's end
        return invalid(f"unreadable record: {type(exc).__name__}: {exc}"[:500])


def usable_id(value: object) -> str | None:
    """`value` as a track id, or None when it cannot be one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return None if id_problem(str(value)) else str(value)


def id_problem(value: str) -> str | None:
    """Why `value` cannot be a track id, or None."""
    if not value:
        return "is empty"
    if not is_text(value):
        return "is not text (an unpaired surrogate)"
    if len(value) > 200:
        return f"is {len(value)} characters long (at most 200)"
    if not re.fullmatch(IDENTIFIER, value):
        return "holds whitespace, '/', ':' or control characters"
    return None


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors()
        )
    return str(exc)
