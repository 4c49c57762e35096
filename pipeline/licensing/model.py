"""The licence a partner attaches to a track, as delivered (validated, not yet judged)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Use(StrEnum):
    """Granted uses, named after the C2PA/CAWG training-and-data-mining assertion."""

    AI_TRAINING = "ai_training"
    AI_GENERATIVE_TRAINING = "ai_generative_training"
    AI_INFERENCE = "ai_inference"
    DATA_MINING = "data_mining"
    COMMERCIAL = "commercial"


class Evidence(BaseModel):
    """Where the signed licence document is, and its hash, so an auditor can check it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Revocation(BaseModel):
    """The rights holder withdrew the licence from `date` on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: date
    reason: str | None = None


class License(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
    uses: list[Use] = Field(default_factory=list)
    territories: list[str] = Field(default_factory=lambda: ["Worldwide"])
    excluded_territories: list[str] = Field(default_factory=list)
    valid_from: date | None = None
    valid_until: date | None = None
    attribution: str | None = Field(default=None, max_length=5000)
    evidence: Evidence | None = None
    tdm_opt_out: bool = False
    revoked: Revocation | None = None
