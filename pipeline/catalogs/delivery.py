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


def files_stamp(partner: Partner) -> str | None:
    """A stamp of the catalog files a manifest or CSV delivery is read from (their names,
    sizes and modification times, or gs:// generations; nothing read): while it is the same,
    so are the records. None for DDEX, whose records also depend on which audio files
    exist, and for feeds, which are only known by fetching them."""
    from pipeline.catalogs import location
    from pipeline.catalogs.manifest import MANIFEST_NAME

    if partner.connector == "manifest":
        pattern = MANIFEST_NAME
    elif partner.connector == "csv":
        pattern = partner.mapping_or_default().files
    else:
        return None
    try:
        delivery = location.open_delivery(partner.location, partner.connector)
        files = delivery.files(pattern)
        stamps = [delivery.stamp(file) for file in files]
    except (OSError, ValueError, location.DeliveryError):
        return None
    if not files or None in stamps:
        return None
    lines = [f"{f.name}\t{f.location}\t{stamp}" for f, stamp in zip(files, stamps, strict=True)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


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
