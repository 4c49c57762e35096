"""Typed catalog records: every connector normalises partner data into a `CatalogItem`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.licensing.model import License


class CatalogItem(BaseModel):
    """One track as a partner delivered it; `audio` is resolved to an absolute location."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    partner: str = Field(min_length=1)
    track_id: str = Field(min_length=1, max_length=200, pattern=r"^[^\s/:]+$")
    isrc: str | None = Field(default=None, pattern=r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
    title: str = Field(min_length=1)
    artists: list[str] = Field(min_length=1)
    audio: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    license: License
    source: str | None = Field(
        default=None, description="where in the delivery the record was read (set by us)"
    )

    @field_validator("isrc", mode="before")
    @classmethod
    def _normalise_isrc(cls, value: object) -> object:
        if isinstance(value, str):
            return value.replace("-", "").strip().upper() or None
        return value

    @property
    def key(self) -> str:
        return f"{self.partner}:{self.track_id}"


class RawRecord(BaseModel):
    """A partner record as read, before validation: connectors produce these."""

    model_config = ConfigDict(frozen=True)

    partner: str
    root: str
    source: str
    line: int
    data: dict


class InvalidRecord(BaseModel):
    """A record that could not become a `CatalogItem`; it is kept, with why, not dropped."""

    model_config = ConfigDict(frozen=True)

    partner: str
    track_id: str
    source: str
    message: str
    raw: dict | str | None = None

    @property
    def key(self) -> str:
        return f"{self.partner}:{self.track_id}"
