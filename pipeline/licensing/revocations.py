"""Revocations recorded by rights managers (`corpus revoke`), applied to delivered licences.

Pure: a revocation names a partner and a track or a licence id, and an effective date; the
licence of a matching item is judged as revoked from that date (the earliest date wins).
"""

from __future__ import annotations

from datetime import date

from pipeline.licensing.model import License, Revocation


def new_revocation(
    partner: str,
    track_id: str | None,
    license_id: str | None,
    reason: str,
    actor: str,
    effective: date,
) -> dict:
    """A revocation as `corpus revoke` records it; ValueError names what is wrong."""
    if bool(track_id) == bool(license_id):
        raise ValueError("give exactly one of --track or --license")
    if not partner.strip() or not reason.strip() or not actor.strip():
        raise ValueError("--partner, --reason and --actor must not be empty")
    return {
        "partner": partner,
        "track_id": track_id,
        "license_id": license_id,
        "reason": reason,
        "actor": actor,
        "effective": effective.isoformat(),
    }


def subject(revocation: dict) -> str:
    """What a revocation names, as events and audits write it."""
    if revocation.get("track_id"):
        return f"{revocation['partner']}:{revocation['track_id']}"
    return f"licence:{revocation['partner']}:{revocation['license_id']}"


def describe(revocation: dict) -> str:
    """What a revocation names, for a person."""
    if revocation.get("track_id"):
        return f"track {revocation['partner']}:{revocation['track_id']}"
    return f"licence {revocation['license_id']} of {revocation['partner']}"


def matching(revocations: list[dict], partner: str, track_id: str, licence_id: str) -> list[dict]:
    return [
        r
        for r in revocations
        if r["partner"] == partner
        and (r.get("track_id") == track_id or r.get("license_id") == licence_id)
    ]


def apply_revocations(
    licence: License, partner: str, track_id: str, revocations: list[dict]
) -> License:
    found = matching(revocations, partner, track_id, licence.id)
    if not found:
        return licence
    earliest = min(found, key=lambda r: r["effective"])
    effective = date.fromisoformat(earliest["effective"])
    if licence.revoked and licence.revoked.date <= effective:
        return licence
    reason = f"{earliest['reason']} (revoked by {earliest['actor']})"
    return licence.model_copy(update={"revoked": Revocation(date=effective, reason=reason)})
