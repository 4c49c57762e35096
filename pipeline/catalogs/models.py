"""Typed catalog records: every connector normalises partner data into a `CatalogItem`."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from pipeline.licensing.model import License

HashAlgorithm = Literal["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
HASH_ALGORITHMS: tuple[str, ...] = get_args(HashAlgorithm)
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
HEX_DIGEST = "^(?:" + "|".join(f"[0-9a-f]{{{n}}}" for n in HEX_LENGTHS.values()) + ")$"


class HashSum(BaseModel):
    """A checksum the partner delivered for the audio (e.g. a DDEX `HashSum`); the fetch
    stage checks it against the bytes it reads, so nothing is read to catalog an item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: HashAlgorithm
    value: str = Field(
        pattern=HEX_DIGEST, description="the digest in lowercase hex, as long as the algorithm's"
    )

    @model_validator(mode="after")
    def _length_fits(self) -> HashSum:
        if len(self.value) != HEX_LENGTHS[self.algorithm]:
            raise ValueError(
                f"a {self.algorithm} digest has {HEX_LENGTHS[self.algorithm]} hex digits, "
                f"not {len(self.value)}"
            )
        return self


# Identifiers end up in item keys, shard rows and file names: no control characters, ever.
IDENTIFIER = r"^[^\s/:\x00-\x1f\x7f-\x9f]+$"
TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"
MAX_TEXT = 1000
MAX_ARTISTS = 100


class CatalogItem(BaseModel):
    """One track as a partner delivered it; `audio` is resolved to an absolute location.
    Identifiers and names refuse control characters, and every text has a size cap."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    partner: str = Field(min_length=1)
    track_id: str = Field(min_length=1, max_length=200, pattern=IDENTIFIER)
    isrc: str | None = Field(default=None, pattern=r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
    title: str = Field(min_length=1, max_length=MAX_TEXT, pattern=TEXT)
    artists: list[
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=TEXT)]
    ] = Field(min_length=1, max_length=MAX_ARTISTS)
    audio: str = Field(min_length=1, max_length=4096, pattern=TEXT)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    hash_sum: HashSum | None = Field(
        default=None, description="another delivered checksum of the audio, checked on fetch"
    )
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
