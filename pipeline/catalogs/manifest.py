"""JSONL manifest connector: one track per line, audio paths relative to the delivery root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from pipeline.catalogs.models import InvalidRecord, RawRecord

MANIFEST_NAME = "manifest.jsonl"


def read(partner: str, location: str) -> Iterator[RawRecord | InvalidRecord]:
    """One raw record per manifest line, or an invalid record for a line that is no object."""
    root = Path(urlparse(location).path if location.startswith("file://") else location)
    manifest = root / MANIFEST_NAME if root.is_dir() else root
    with manifest.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            source = f"{manifest}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield InvalidRecord(
                    partner=partner,
                    track_id=f"#line-{number}",
                    source=source,
                    message=f"not JSON: {exc}",
                    raw=line[:500],
                )
                continue
            if not isinstance(record, dict):
                yield InvalidRecord(
                    partner=partner,
                    track_id=f"#line-{number}",
                    source=source,
                    message="a manifest line must be a JSON object",
                    raw=line[:500],
                )
                continue
            yield RawRecord(
                partner=partner, root=str(manifest.parent), source=source, line=number, data=record
            )
