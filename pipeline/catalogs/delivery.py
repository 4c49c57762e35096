"""One partner delivery: its records as read, their digest, and typed items made lazily."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.catalogs import read_partner
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.normalise import normalise, record_key
from pipeline.catalogs.partners import Partner


@dataclass
class Delivery:
    """The records of one delivery in the order read. `records_digest` covers each record
    as read (data, file and line), in order: an equal digest means the metadata validation
    of an earlier read holds for this one record by record."""

    partner: Partner
    records: list[RawRecord | InvalidRecord]
    records_digest: str

    def raw_data(self) -> list[dict]:
        """What the metadata suite checks: the data of every readable record, in order."""
        return [r.data for r in self.records if isinstance(r, RawRecord)]

    def items(self, failures: dict[int, list[str]]) -> Iterator[CatalogItem | InvalidRecord]:
        """Typed items in delivery order, made one at a time; `failures` maps a readable
        record's index to the expectations it failed."""
        seen: set[str] = set()
        count = index = 0
        for record in self.records:
            count += 1
            if isinstance(record, InvalidRecord):
                if record.key in seen:
                    unique = f"{record.track_id}#record-{count}"
                    record = record.model_copy(update={"track_id": unique})
                seen.add(record.key)
                yield record
                continue
            track_id = record_key(record, seen)
            yield normalise(record, track_id, failures.get(index))
            index += 1


def open_delivery(partner: Partner) -> Delivery:
    """Read every record of `partner`'s delivery (nothing validated or normalised yet)."""
    digest = hashlib.sha256()
    records = []
    for record in read_partner(partner):
        digest.update(type(record).__name__.encode())
        digest.update(record.model_dump_json().encode())
        records.append(record)
    return Delivery(partner, records, digest.hexdigest())


def read_delivery(partner: Partner):
    """(items in delivery order, MetadataReport); a failed expectation makes the record invalid."""
    from pipeline.validation import validate_records

    delivery = open_delivery(partner)
    report = validate_records(delivery.raw_data())
    return list(delivery.items(report.failures)), report
