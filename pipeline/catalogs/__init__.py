"""Catalog connectors, chosen by the partners file's `connector` name and imported lazily."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.partners import Partner

CONNECTORS = {
    "manifest": "pipeline.catalogs.manifest",
    "csv": "pipeline.catalogs.csv_manifest",
    "ddex": "pipeline.catalogs.ddex",
    "http": "pipeline.catalogs.http_feed",
}


class UnknownConnector(ValueError):
    """The partners file names a connector this version does not have."""


def read_partner(partner: Partner) -> Iterator[RawRecord | InvalidRecord]:
    """`connector.read(id, location, **options)`; a connector lists the Partner fields it
    takes (mapping, credentials, allowed_audio_hosts) in its module-level `OPTIONS`."""
    module = CONNECTORS.get(partner.connector)
    if module is None:
        raise UnknownConnector(
            f"partner {partner.id!r}: connector {partner.connector!r} is not available; "
            f"choose one of {sorted(CONNECTORS)}"
        )
    connector = importlib.import_module(module)
    options = {name: getattr(partner, name) for name in getattr(connector, "OPTIONS", ())}
    if "mapping" in options:
        options["mapping"] = partner.mapping_or_default()
    return connector.read(partner.id, partner.location, **options)


__all__ = ["CatalogItem", "InvalidRecord", "Partner", "RawRecord", "read_partner"]
