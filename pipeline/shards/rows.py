"""Pure builders of shard rows and their deterministic split."""

from __future__ import annotations

import hashlib
from datetime import date

from pipeline.shards.columns import QUALITY_COLUMNS

DEFAULT_SPLITS = {"train": 90, "validation": 5, "test": 5}


def split_for(main_artist: str, splits: dict[str, int] | None = None) -> str:
    """Split by main artist: no artist crosses splits, and an item keeps its split while
    the ratios (percent, from the policy) stay the same."""
    normalised = " ".join(main_artist.casefold().split())
    bucket = int.from_bytes(hashlib.sha256(normalised.encode()).digest()[:8], "big") % 100
    bound = 0
    for name, percent in (splits or DEFAULT_SPLITS).items():
        bound += percent
        if bucket < bound:
            return name
    return "train"


def shard_row(
    record: dict, audio_bytes: bytes, audio_sha256: str, splits: dict[str, int] | None = None
) -> dict:
    """One shard row from an analysed decision record (item, licence, descriptors)."""
    licence = record["license"]
    quality = record.get("quality") or {}
    valid_until = licence.get("valid_until")
    filename = record["audio_location"].rsplit("/", 1)[-1]
    return {
        "item_key": record["item_key"],
        "partner": record["partner"],
        "track_id": record["track_id"],
        "isrc": record.get("isrc"),
        "title": record["title"],
        "artists": list(record["artists"]),
        "license_id": licence["id"],
        "license_uses": list(licence.get("uses") or []),
        "license_territories": list(licence.get("territories") or []),
        "license_valid_until": date.fromisoformat(valid_until) if valid_until else None,
        "attribution": licence.get("attribution"),
        "split": split_for(record["artists"][0], splits),
        "audio": {"bytes": audio_bytes, "path": filename},
        "audio_sha256": audio_sha256,
        "audio_codec": record.get("codec"),
        "descriptor_set": record["descriptor_set"],
        **{name: quality.get(name) for name in QUALITY_COLUMNS},
        **record["descriptors"],
    }
