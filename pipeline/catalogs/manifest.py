"""JSONL manifest connector: one track per line, audio paths relative to the delivery root."""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.catalogs.location import open_delivery
from pipeline.catalogs.models import InvalidRecord, RawRecord
from pipeline.catalogs.normalise import usable_id
from pipeline.catalogs.strict_json import (
    MAX_RECORD_BYTES,
    RecordError,
    lenient_field,
    loads_record,
)

MANIFEST_NAME = "manifest.jsonl"
BOM = "\ufeff".encode()


def read(partner: str, location: str) -> Iterator[RawRecord | InvalidRecord]:
    """One raw record per manifest line, or an invalid record naming `file:line` for a line
    that cannot be one (see `strict_json`: not UTF-8, not a JSON object, duplicate keys,
    NaN, huge numbers, deep nesting, over 1 MiB); a UTF-8 byte-order mark is skipped.
    `location` is the delivery folder (or `gs://` prefix) holding `manifest.jsonl`, or the
    manifest file (object) itself."""
    delivery = open_delivery(location, "manifest")
    found = delivery.files(MANIFEST_NAME)
    if not found:
        raise FileNotFoundError(f"{delivery.root}: no {MANIFEST_NAME}; nothing delivered?")
    manifest = found[0].location
    with delivery.open(manifest) as lines:
        number = 0
        while True:
            line = lines.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                while (rest := lines.readline(MAX_RECORD_BYTES)) and not rest.endswith(b"\n"):
                    pass
            if number == 1:
                line = line.removeprefix(BOM)
            if not line.strip():
                continue
            source = f"{manifest}:{number}"
            try:
                record = loads_record(line)
            except RecordError as exc:
                named = usable_id(lenient_field(line, "track_id"))
                yield InvalidRecord(
                    partner=partner,
                    track_id=named or f"#line-{number}",
                    source=source,
                    message=str(exc),
                    raw=line[:500].decode("utf-8", errors="replace"),
                )
                continue
            yield RawRecord(
                partner=partner, root=delivery.root, source=source, line=number, data=record
            )
