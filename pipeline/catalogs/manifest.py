"""JSONL manifest connector: one track per line, audio paths relative to the delivery root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from pydantic import ValidationError

from pipeline.catalogs.models import CatalogItem, InvalidRecord

MANIFEST_NAME = "manifest.jsonl"


def resolve_audio(root: Path, audio: str) -> str:
    """Absolute location of `audio`; raises ValueError when a path escapes the delivery."""
    parsed = urlparse(audio)
    if parsed.scheme == "file":
        audio = parsed.path
    elif parsed.scheme and len(parsed.scheme) > 1:
        return audio
    if audio.startswith("/") or "\\" in audio or "\x00" in audio:
        raise ValueError(f"audio path {audio!r} must be relative to the delivery root")
    resolved = (root / audio).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"audio path {audio!r} escapes the delivery root")
    return str(resolved)


def read(partner: str, location: str) -> Iterator[CatalogItem | InvalidRecord]:
    """Yield one typed item or one invalid record per manifest line, in delivery order."""
    root = Path(urlparse(location).path if location.startswith("file://") else location)
    manifest = root / MANIFEST_NAME if root.is_dir() else root
    root = manifest.parent
    seen: set[str] = set()
    with manifest.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            yield _parse_line(partner, root, f"{manifest}:{number}", line, number, seen)


def _parse_line(
    partner: str, root: Path, source: str, line: str, number: int, seen: set[str]
) -> CatalogItem | InvalidRecord:
    fallback_id = f"#line-{number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return InvalidRecord(
            partner=partner,
            track_id=fallback_id,
            source=source,
            message=f"not JSON: {exc}",
            raw=line[:500],
        )
    if not isinstance(record, dict):
        return InvalidRecord(
            partner=partner,
            track_id=fallback_id,
            source=source,
            message="a manifest line must be a JSON object",
            raw=line[:500],
        )
    raw_id = record.get("track_id")
    track_id = str(raw_id) if isinstance(raw_id, str | int) and str(raw_id) else fallback_id
    if f"{partner}:{track_id}" in seen:
        return InvalidRecord(
            partner=partner,
            track_id=f"{track_id}{fallback_id}",
            source=source,
            message=f"track_id {track_id!r} appears more than once in the delivery",
            raw=record,
        )
    seen.add(f"{partner}:{track_id}")
    try:
        if isinstance(record.get("audio"), str):
            record = {**record, "audio": resolve_audio(root, record["audio"])}
        return CatalogItem.model_validate({**record, "partner": partner})
    except (ValidationError, ValueError) as exc:
        return InvalidRecord(
            partner=partner,
            track_id=track_id,
            source=source,
            message=_short(exc),
            raw=record,
        )


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors()
        )
    return str(exc)
