"""What every refresh step needs: provenance, the version's frozen settings, its store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from pipeline.config import Settings
from pipeline.items import Stage, refused
from pipeline.licensing import decide
from pipeline.licensing.decide import Decision
from pipeline.licensing.model import License
from pipeline.licensing.policy import Policy
from pipeline.licensing.revocations import apply_revocations
from pipeline.provenance import Provenance, connect
from pipeline.storage import ObjectStore, open_store


@dataclass(frozen=True)
class Step:
    prov: Provenance
    meta: dict
    policy: Policy
    store: ObjectStore
    attempt: int  # this attempt's fence: see Provenance.begin_attempt

    @property
    def version(self) -> str:
        return self.meta["_id"]


@contextmanager
def step(settings: Settings, version: str) -> Iterator[Step]:
    """The version as `plan` froze it: later steps never re-read the policy file."""
    prov = connect(settings)
    try:
        meta = prov.version(version)
        if meta is None or not meta.get("planned"):
            raise LookupError(f"version {version} was never planned")
        policy = Policy.model_validate(meta["policy"])
        yield Step(prov, meta, policy, open_store(meta["store"]), prov.begin_attempt(version))
    finally:
        prov.close()


def rejudge(
    record: dict, policy: Policy, as_of: date, revocations: list[dict]
) -> tuple[License, Decision]:
    """A recorded item's licence with the revocations known now applied, judged again."""
    licence = apply_revocations(
        License.model_validate(record["license"]),
        record["partner"],
        record["track_id"],
        revocations,
    )
    return licence, decide(licence, policy, as_of)


def refusal(licence: License, decision: Decision, stage: Stage, note: str = "") -> dict:
    """The fields that record a licence refusal at `stage` (`note` ends each message)."""
    return {
        **refused(stage, decision.reasons, [m + note for m in decision.messages]),
        "license": licence.model_dump(mode="json"),
    }


def row_hash(record: dict) -> str:
    """What a shard row is made of besides its audio; equal hashes mean an unchanged row.
    A delivered `hash_sum` counts too: when it changes, the audio an earlier run checked is
    not the audio the partner now vouches for, so neither its acceptance nor its refusal is
    carried over. (It is left out when absent, so rows without one keep their hash.)"""
    fields = ("item_key", "isrc", "title", "artists", "license", "sha256")
    inputs = {f: record.get(f) for f in fields}
    if record.get("hash_sum"):
        inputs["hash_sum"] = record["hash_sum"]
    canonical = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
