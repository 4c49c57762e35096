"""JSONL manifest connector: one track per line, audio paths relative to the delivery root."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

from pipeline.catalogs.location import open_delivery
from pipeline.catalogs.models import InvalidRecord, RawRecord

MANIFEST_NAME = "manifest.jsonl"


def read(partner: str, location: str) -> Iterator[RawRecord | InvalidRecord]:
    """One raw record per manifest line, or an invalid record for a line that is no object.
    `location` is the delivery folder (or `gs://` prefix) holding `manifest.jsonl`, or the
    manifest file (object) itself."""
    delivery = open_delivery(location, "manifest")
    found = delivery.files(MANIFEST_NAME)
    if not found:
        raise FileNotFoundError(f"{delivery.root}: no {MANIFEST_NAME}; nothing delivered?")
    manifest = found[0].location
    with io.TextIOWrapper(delivery.open(manifest), encoding="utf-8", errors="replace") as lines:
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
                partner=partner, root=delivery.root, source=source, line=number, data=record
            )
