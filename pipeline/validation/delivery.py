"""A partner delivery's metadata validation inside a refresh: chunk by chunk, published in
parts when it is large, or reused from an earlier run over the very same records."""

from __future__ import annotations

from pipeline.catalogs.delivery import Delivery
from pipeline.validation.publish import (
    earlier_failures,
    publish_part,
    publish_parts,
    publish_report,
)


class DeliveryValidation:
    """The metadata validation of one delivery, a chunk at a time (called by
    `Delivery.items`). When the version that validated the parent's delivery read the very
    same records with the same suite, its result holds and is reused: no validation library
    is imported for an unchanged delivery. A delivery of more than one chunk is validated
    and published in parts."""

    def __init__(self, store, prov, parent: str | None, version: str, delivery: Delivery):
        from pipeline.validation import suite_hash

        self.store, self.version, self.partner = store, version, delivery.partner.id
        self.suite, self.whole = suite_hash(), delivery.complete
        self.parts: list[dict] = []
        self.failures: dict[int, list[str]] = {}
        self.offset = 0
        self.report = None
        self.reused = None
        earlier = (prov.delivery(f"{parent}/{self.partner}") if parent else None) or {}
        report = earlier.get("validation")
        if report and self.whole:
            source = report.get("reused_from") or parent
            failures = earlier_failures(
                store, source, self.partner, delivery.records_digest, self.suite
            )
            if failures is not None:
                self.failures, self.reused = failures, {**report, "reused_from": source}

    def __call__(self, records: list[dict], number: int) -> dict[int, list[str]]:
        if self.reused:
            return self.failures
        from pipeline.validation import validate_records

        report = validate_records(records)
        for index, names in report.failures.items():
            self.failures[self.offset + index] = names
        self.offset += len(records)
        if self.whole:
            self.report = report
        else:
            part = publish_part(self.store, self.version, self.partner, report, number + 1)
            self.parts.append(part)
        return report.failures

    def published(self, records_digest: str) -> dict:
        """Where the result is, once every chunk was validated."""
        if self.reused:
            return self.reused
        if self.parts:
            return publish_parts(
                self.store,
                self.version,
                self.partner,
                self.parts,
                self.failures,
                records_digest,
                self.suite,
            )
        if self.report is None:
            self([], 0)
        return publish_report(
            self.store, self.version, self.partner, self.report, records_digest, self.suite
        )
