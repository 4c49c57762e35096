"""One partner delivery, read and validated as a batch: typed items plus the GX report."""

from __future__ import annotations

from pipeline.catalogs import read_partner
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.normalise import normalise, record_key
from pipeline.catalogs.partners import Partner


def read_delivery(partner: Partner):
    """(items in delivery order, MetadataReport); a failed expectation makes the record invalid."""
    from pipeline.validation import validate_records

    records = list(read_partner(partner))
    raws = [r for r in records if isinstance(r, RawRecord)]
    report = validate_records([r.data for r in raws])
    seen: set[str] = set()
    items: list[CatalogItem | InvalidRecord] = []
    index = 0
    for record in records:
        if isinstance(record, InvalidRecord):
            if record.key in seen:
                unique = f"{record.track_id}#record-{len(items) + 1}"
                record = record.model_copy(update={"track_id": unique})
            seen.add(record.key)
            items.append(record)
            continue
        track_id = record_key(record, seen)
        items.append(normalise(record, track_id, report.failures.get(index)))
        index += 1
    return items, report
