"""The corpus policy: what a licence must grant for a track to enter this corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the field."""


class AllowedFamilies(BaseModel):
    """Creative Commons elements that are refused unless switched on explicitly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share_alike: bool = False
    non_commercial: bool = False
    no_derivatives: bool = False


class AudioThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_duration_s: float = Field(default=1.0, ge=0)
    max_file_bytes: int = Field(default=500 * 1024 * 1024, gt=0)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "strict-default"
    purpose: Literal["commercial", "non_commercial"] = "commercial"
    territories: list[str] = Field(default_factory=lambda: ["Worldwide"], min_length=1)
    allow: AllowedFamilies = Field(default_factory=AllowedFamilies)
    require_evidence: bool = False
    min_validity_days: int = Field(default=0, ge=0)
    audio: AudioThresholds = Field(default_factory=AudioThresholds)

    @property
    def hash(self) -> str:
        """Stable over key order and formatting, so equal policies share a hash."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_policy(path: Path | None) -> Policy:
    """The policy in `path`, or the strict default when no file is given."""
    if path is None:
        return Policy()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return Policy.model_validate(doc)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise PolicyError(f"{path}: invalid corpus policy: {exc}") from exc
