"""The corpus policy: what a licence must grant for a track to enter this corpus.

A policy file is YAML, checked against `schemas/policy.schema.json` (generated from the
model below and kept in sync by a test) so errors name the offending field.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.licensing.model import Use
from pipeline.licensing.territories import is_territory


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the field."""


class AllowedFamilies(BaseModel):
    """Creative Commons elements that are refused unless switched on explicitly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share_alike: bool = Field(default=False, description="admit CC BY-SA")
    non_commercial: bool = Field(
        default=False, description="admit CC BY-NC (never for a commercial corpus)"
    )
    no_derivatives: bool = Field(default=False, description="admit CC BY-ND")


class AudioThresholds(BaseModel):
    """Thresholds of the audio quality gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_duration_s: float = Field(default=1.0, ge=0)
    max_duration_s: float = Field(
        default=3600.0,
        gt=0,
        description="longer audio is refused; checked on the header before decoding, too",
    )
    max_file_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    min_sample_rate_hz: int = Field(default=22050, gt=0)
    max_sample_rate_hz: int = Field(
        default=192000, gt=0, description="a header declaring more is refused before decoding"
    )
    allowed_sample_rates_hz: list[int] | None = Field(
        default=None, description="if set, the only sample rates accepted (Hz)"
    )
    silence_threshold_dbfs: float = Field(
        default=-60.0,
        le=0,
        description="4096-sample frames quieter than this (RMS) count as silent",
    )
    max_silence_ratio: float = Field(default=0.9, ge=0, le=1)
    max_clipped_ratio: float = Field(default=0.01, ge=0, le=1)
    min_bandwidth_hz: float = Field(default=8000, ge=0)


class Splits(BaseModel):
    """Percent of main artists per split; an artist and its items never cross splits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: int = Field(default=90, ge=0, le=100)
    validation: int = Field(default=5, ge=0, le=100)
    test: int = Field(default=5, ge=0, le=100)

    @model_validator(mode="after")
    def _sum_to_100(self) -> Splits:
        if self.train + self.validation + self.test != 100:
            raise ValueError("train + validation + test must be 100 (percent)")
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "strict-default"
    purpose: Literal["commercial", "non_commercial"] = "commercial"
    required_uses: list[Use] = Field(
        default_factory=lambda: [Use.AI_TRAINING],
        min_length=1,
        description="uses a contract (LicenseRef) must grant",
    )
    territories: list[str] = Field(
        default_factory=lambda: ["Worldwide"],
        min_length=1,
        description="training territories a grant must cover (ISO 3166-1 alpha-2 or Worldwide)",
    )
    allow: AllowedFamilies = Field(default_factory=AllowedFamilies)
    require_evidence: bool = Field(
        default=False, description="every licence needs an evidence document (uri)"
    )
    require_contract_evidence: bool = Field(
        default=True,
        description="a contract (LicenseRef) needs its licence document: evidence uri and "
        "sha256; Creative Commons and public-domain marks need none (their text is public)",
    )
    min_validity_days: int = Field(
        default=0, ge=0, description="days a licence must still run after the logical date"
    )
    audio: AudioThresholds = Field(default_factory=AudioThresholds)
    splits: Splits = Field(default_factory=Splits)

    @field_validator("territories")
    @classmethod
    def _known_territories(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if not is_territory(t)]
        if unknown:
            raise ValueError(f"not ISO 3166-1 alpha-2 codes or Worldwide: {unknown}")
        return value

    def needed_until(self, as_of: date) -> date:
        """The last day a licence must still hold on a run of logical date `as_of`."""
        return as_of + timedelta(days=self.min_validity_days)

    @property
    def hash(self) -> str:
        """Stable over key order and formatting, so equal policies share a hash."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def policy_json_schema() -> dict:
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://ethical-corpus.example/schemas/policy.schema.json"
    return schema


def schema_file() -> Path:
    return Path(__file__).resolve().parents[2] / "schemas" / "policy.schema.json"


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_file().read_text(encoding="utf-8")))


def load_policy(path: Path | None) -> Policy:
    """The policy in `path`, or the strict default when no file is given."""
    if path is None:
        return Policy()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read corpus policy: {exc}") from exc
    doc = {} if doc is None else doc
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
            for e in errors
        )
        raise PolicyError(f"{path}: invalid corpus policy: {details}")
    try:
        return Policy.model_validate(doc)
    except ValidationError as exc:
        raise PolicyError(f"{path}: invalid corpus policy: {exc}") from exc
