"""The licence decision: licence + policy + date in, every applicable reason out. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from pipeline.licensing.model import License, Use
from pipeline.licensing.policy import Policy
from pipeline.licensing.territories import WORLDWIDE
from pipeline.reasons import Reason

_CC = re.compile(
    r"^CC-BY(?P<nc>-NC)?(?P<variant>-ND|-SA)?"
    r"-(?:(?:1\.0|4\.0)|(?:2\.0|2\.5|3\.0)(?:-[A-Z]{2,3})?)$",
    re.IGNORECASE,
)
_PUBLIC_DOMAIN = {"CC0-1.0": "CC0-1.0", "LICENSEREF-PDM": "LicenseRef-PDM"}
_CONTRACT = re.compile(r"^LicenseRef-[A-Za-z0-9.]+(?:-[A-Za-z0-9.]+)+$", re.IGNORECASE)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reasons: list[Reason] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def licence_family(licence_id: str) -> str:
    """`public-domain`, `cc`, `contract` or `unknown` (SPDX ids compare case-insensitively)."""
    if licence_id.upper() in _PUBLIC_DOMAIN:
        return "public-domain"
    if _CC.match(licence_id):
        return "cc"
    if _CONTRACT.match(licence_id):
        return "contract"
    return "unknown"


def decide(licence: License, policy: Policy, as_of: date) -> Decision:
    """Admit or refuse `licence` under `policy` on the run's logical date `as_of`.

    Validity bounds are inclusive: a licence valid until day D still admits on day D.
    """
    found: dict[Reason, str] = {}
    for reason, message in _grant_problems(licence, policy):
        found.setdefault(reason, message)
    if licence.valid_from and licence.valid_from > as_of:
        found[Reason.NOT_YET_VALID] = f"valid from {licence.valid_from}, logical date {as_of}"
    needed_until = policy.needed_until(as_of)
    if licence.valid_until and licence.valid_until < needed_until:
        found[Reason.EXPIRED] = f"valid until {licence.valid_until}, logical date {as_of}" + (
            f", policy needs validity until {needed_until}" if policy.min_validity_days else ""
        )
    if licence.revoked and licence.revoked.date <= needed_until:
        why = f": {licence.revoked.reason}" if licence.revoked.reason else ""
        when = (
            f"revoked on {licence.revoked.date}"
            if licence.revoked.date <= as_of
            else f"revoked from {licence.revoked.date}, before the validity the policy needs"
        )
        found[Reason.REVOKED] = when + why
    missing = uncovered_territories(licence, policy.territories)
    if missing:
        found[Reason.TERRITORY_EXCLUDED] = f"grant does not cover {', '.join(missing)}"
    if licence.tdm_opt_out:
        found[Reason.TDM_OPT_OUT] = "the rights holder opted out of text and data mining"
    if policy.require_evidence and licence.evidence is None:
        found[Reason.NO_EVIDENCE] = "the policy requires a licence document (evidence)"
    elif policy.require_contract_evidence and licence_family(licence.id) == "contract":
        if licence.evidence is None or licence.evidence.sha256 is None:
            found[Reason.NO_EVIDENCE] = (
                f"contract {licence.id} comes without its licence document "
                "(evidence uri and sha256), so no admitted row could be proved to it"
            )
    reasons = sorted(found)
    return Decision(not reasons, reasons, [f"{r}: {found[r]}" for r in reasons])


def holds_until(licence: License, policy: Policy, as_of: date) -> date | None:
    """The last logical date from `as_of` on which `decide` still gives the same reasons
    (None: for ever). Only the dates move a decision: the licence starts, runs out of the
    validity the policy needs, or its revocation comes within that validity."""
    needed = policy.min_validity_days
    bounds = []
    if licence.valid_from and licence.valid_from > as_of:
        bounds.append(licence.valid_from - timedelta(days=1))
    if licence.valid_until and licence.valid_until >= policy.needed_until(as_of):
        bounds.append(licence.valid_until - timedelta(days=needed))
    if licence.revoked and licence.revoked.date > policy.needed_until(as_of):
        bounds.append(licence.revoked.date - timedelta(days=needed + 1))
    return min(bounds, default=None)


def _grant_problems(licence: License, policy: Policy):
    lid = licence.id
    family = licence_family(lid)
    if family == "public-domain":
        return
    if family == "cc":
        match = _CC.match(lid)
        if match["nc"]:
            if policy.purpose == "commercial":
                yield Reason.USE_NOT_GRANTED, f"{lid} is NonCommercial; the corpus is commercial"
            elif not policy.allow.non_commercial:
                yield Reason.USE_NOT_GRANTED, f"{lid} is NonCommercial; the policy refuses NC"
        variant = (match["variant"] or "").upper()
        if variant == "-ND" and not policy.allow.no_derivatives:
            yield Reason.USE_NOT_GRANTED, f"{lid} is NoDerivatives; the policy refuses ND"
        if variant == "-SA" and not policy.allow.share_alike:
            yield Reason.USE_NOT_GRANTED, f"{lid} is ShareAlike; the policy refuses SA"
        return
    if family == "contract":
        missing = [u.value for u in policy.required_uses if u not in licence.uses]
        if policy.purpose == "commercial" and Use.COMMERCIAL not in licence.uses:
            missing.append(Use.COMMERCIAL.value)
        if missing:
            yield Reason.USE_NOT_GRANTED, f"contract {lid} does not grant {', '.join(missing)}"
        return
    yield Reason.LICENSE_UNKNOWN, f"{lid!r} is not an admissible SPDX id or LicenseRef contract"


def uncovered_territories(licence: License, wanted: list[str]) -> list[str]:
    """Training territories the grant does not cover (`Worldwide` means all but exclusions)."""
    granted = set(licence.territories)
    excluded = set(licence.excluded_territories)
    if WORLDWIDE in wanted:
        if WORLDWIDE not in granted:
            return [WORLDWIDE]
        return sorted(excluded)
    if WORLDWIDE in granted:
        return sorted(t for t in wanted if t in excluded)
    return sorted(t for t in wanted if t not in granted or t in excluded)
