"""One partner delivery, read in chunks: records as read, their digest, typed items."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator

from pipeline.catalogs import read_partner
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.normalise import normalise, record_key
from pipeline.catalogs.partners import Partner

# Records held in memory at once: a chunk is validated, normalised and judged, then dropped.
CHUNK = 100_000

Record = RawRecord | InvalidRecord
# Failed expectations per readable record of one chunk (index within the chunk).
Validate = Callable[[list[dict], int], dict[int, list[str]]]


class Delivery:
    """A delivery read lazily, `chunk` records at a time (the first chunk at once).
    `records_digest` covers each record as read (data, file and line), in order: an equal
    digest means the metadata validation of an earlier read holds record by record. It is
    known once every record was read: at once when the delivery fits in one chunk."""

    def __init__(self, partner: Partner, chunk: int = CHUNK):
        self.partner, self._size = partner, chunk
        self._records = iter(read_partner(partner))
        self._digest = hashlib.sha256()
        self._first: list[Record] | None = self._take()
        self.complete = len(self._first) < chunk or self._peek()

    @property
    def records_digest(self) -> str | None:
        return self._digest.hexdigest() if self.complete else None

    def _take(self) -> list[Record]:
        records = list(itertools.islice(self._records, self._size))
        for record in records:
            self._digest.update(type(record).__name__.encode())
            self._digest.update(record.model_dump_json().encode())
        return records

    def _peek(self) -> bool:
        """Whether nothing follows the first chunk (the one record read ahead is kept)."""
        following = next(self._records, None)
        if following is None:
            return True
        self._records = itertools.chain([following], self._records)
        return False

    def chunks(self) -> Iterator[list[Record]]:
        """Every record in delivery order, a chunk at a time (once)."""
        chunk, self._first = self._first, None
        while chunk:
            yield chunk
            chunk = self._take()
        self.complete = True

    def items(self, validate: Validate) -> Iterator[CatalogItem | InvalidRecord]:
        """Typed items in delivery order, made a chunk at a time; `validate` gets each
        chunk's readable records and the chunk's number."""
        seen: set[str] = set()
        count = 0
        for number, chunk in enumerate(self.chunks()):
            failures = validate([r.data for r in chunk if isinstance(r, RawRecord)], number)
            index = 0
            for record in chunk:
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


def open_delivery(partner: Partner, chunk: int | None = None) -> Delivery:
    """Start reading `partner`'s delivery (nothing validated or normalised yet)."""
    return Delivery(partner, chunk or CHUNK)


def read_delivery(partner: Partner):
    """(items in delivery order, MetadataReport) of a delivery read whole; a failed
    expectation makes the record invalid."""
    from pipeline.validation import validate_records

    reports = []

    def validate(records: list[dict], number: int) -> dict[int, list[str]]:
        reports.append(validate_records(records))
        return reports[-1].failures

    items = list(Delivery(partner, chunk=10**12).items(validate))
    return items, reports[0] if reports else validate_records([])
