"""The shard row's columns, defined once: item and licence columns here, quality-gate and
descriptor columns beside the code that measures them. `schemas/shard_row.json` is
generated from these (`python -m pipeline.schema_export`), never edited by hand."""

from __future__ import annotations

from typing import NamedTuple

SCHEMA_VERSION = 2


class Column(NamedTuple):
    """One shard column: its Arrow type name, unit and meaning."""

    type: str
    unit: str = ""
    description: str = ""
    nullable: bool = True


ITEM_COLUMNS: dict[str, Column] = {
    "item_key": Column("string", description="partner:track_id", nullable=False),
    "partner": Column("string", nullable=False),
    "track_id": Column("string", nullable=False),
    "isrc": Column("string"),
    "title": Column("string", nullable=False),
    "artists": Column("list<string>", nullable=False),
    "license_id": Column("string", description="SPDX id or LicenseRef", nullable=False),
    "license_uses": Column("list<string>"),
    "license_territories": Column("list<string>"),
    "license_valid_until": Column("date32"),
    "attribution": Column("string"),
    "split": Column(
        "string", description="train | validation | test, stable per item key", nullable=False
    ),
    "audio": Column(
        "struct<bytes:binary,path:string>",
        description="file bytes as delivered; datasets.Audio convention",
        nullable=False,
    ),
    "audio_sha256": Column("string", nullable=False),
    "audio_codec": Column("string"),
}

QUALITY_COLUMNS: dict[str, Column] = {
    "peak_dbfs": Column("float64", "dBFS", "quality gate: sample peak"),
    "rms_dbfs": Column("float64", "dBFS", "quality gate: RMS level"),
    "silence_ratio": Column(
        "float64", "", "quality gate: share of frames below the silence threshold"
    ),
    "clipped_ratio": Column("float64", "", "quality gate: share of samples in clipped runs"),
    "bandwidth_hz": Column("float64", "Hz", "quality gate: effective bandwidth"),
    "dc_offset": Column("float64", "", "quality gate: largest channel mean"),
}

DESCRIPTOR_SET_COLUMN = {"descriptor_set": Column("string", nullable=False)}


def _field(name: str, column: Column, *, empty_unit: bool = False) -> dict:
    field: dict = {"name": name, "type": column.type}
    if not column.nullable:
        field["nullable"] = False
    if column.unit or empty_unit:
        field["unit"] = column.unit
    if column.description:
        field["description"] = column.description
    return field


def shard_row_document() -> dict:
    """What `schemas/shard_row.json` holds. Quality columns keep an empty unit, as schema
    version 2 has always recorded it (it is Arrow field metadata, so it is in every shard)."""
    from pipeline.descriptors.essentia_set import DESCRIPTOR_FIELDS

    return {
        "title": "Corpus shard row",
        "description": "One accepted track per row. Types use Arrow names; "
        "units are kept as field metadata.",
        "schema_version": SCHEMA_VERSION,
        "fields": [
            *(_field(n, c) for n, c in ITEM_COLUMNS.items()),
            *(_field(n, c, empty_unit=True) for n, c in QUALITY_COLUMNS.items()),
            *(_field(n, c) for n, c in DESCRIPTOR_SET_COLUMN.items()),
            *(_field(n, c) for n, c in DESCRIPTOR_FIELDS.items()),
        ],
    }
