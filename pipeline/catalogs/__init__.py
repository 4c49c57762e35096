"""Catalog connectors, chosen by the partners file's `connector` name and imported lazily."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.partners import Partner

CONNECTORS = {"manifest": "pipeline.catalogs.manifest"}


class UnknownConnector(ValueError):
    """The partners file names a connector this version does not have."""


def read_partner(partner: Partner) -> Iterator[RawRecord | InvalidRecord]:
    module = CONNECTORS.get(partner.connector)
    if module is None:
        raise UnknownConnector(
            f"partner {partner.id!r}: connector {partner.connector!r} is not available; "
            f"choose one of {sorted(CONNECTORS)}"
        )
    return importlib.import_module(module).read(partner.id, partner.location)


__all__ = ["CatalogItem", "InvalidRecord", "Partner", "RawRecord", "read_partner"]
