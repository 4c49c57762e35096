"""The partners file: which partners to pull and how (YAML)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PartnersFileError(ValueError):
    """The partners file cannot be used; the message names the file and the entry."""


class Partner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    connector: str = "manifest"
    location: str


def load_partners(path: Path) -> list[Partner]:
    """Parse and validate `path`; relative locations are resolved against its folder."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PartnersFileError(f"{path}: cannot read partners file: {exc}") from exc
    entries = (doc or {}).get("partners") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PartnersFileError(f"{path}: expected a non-empty 'partners:' list")
    partners: list[Partner] = []
    for index, entry in enumerate(entries):
        try:
            partner = Partner.model_validate(entry)
        except ValidationError as exc:
            raise PartnersFileError(f"{path}: partners[{index}]: {exc}") from exc
        if "://" not in partner.location:
            location = (path.parent / partner.location).resolve()
            partner = partner.model_copy(update={"location": str(location)})
        partners.append(partner)
    ids = [p.id for p in partners]
    if len(set(ids)) != len(ids):
        raise PartnersFileError(f"{path}: partner ids must be unique, got {ids}")
    return partners
