"""The licence decision: item + policy + date in, every applicable reason out. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from pipeline.catalogs.models import License
from pipeline.licensing.policy import Policy
from pipeline.reasons import Reason

_CC = re.compile(
    r"^CC-BY(?P<nc>-NC)?(?P<variant>-ND|-SA)?-(?:1\.0|2\.0|2\.5|3\.0|4\.0)(?:-[A-Z]{2,})?$"
)
_PUBLIC_DOMAIN = {"CC0-1.0", "LicenseRef-PDM"}
_CONTRACT = re.compile(r"^LicenseRef-[A-Za-z0-9.]+(?:-[A-Za-z0-9.]+)+$")
WORLDWIDE = "Worldwide"


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reasons: list[Reason] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def decide(licence: License, policy: Policy, as_of: date) -> Decision:
    """Admit or refuse `licence` for `policy` as of the run's logical date `as_of`."""
    found: dict[Reason, str] = {}
    for reason, message in _grant_problems(licence, policy):
        found.setdefault(reason, message)
    if licence.valid_from and licence.valid_from > as_of:
        found[Reason.NOT_YET_VALID] = f"valid from {licence.valid_from}, run date {as_of}"
    needed_until = as_of + timedelta(days=policy.min_validity_days)
    if licence.valid_until and licence.valid_until < needed_until:
        found[Reason.EXPIRED] = f"valid until {licence.valid_until}, needed until {needed_until}"
    missing = uncovered_territories(licence, policy.territories)
    if missing:
        found[Reason.TERRITORY_EXCLUDED] = f"grant does not cover {', '.join(missing)}"
    if licence.tdm_opt_out:
        found[Reason.TDM_OPT_OUT] = "rights holder opted out of text and data mining"
    if policy.require_evidence and licence.evidence is None:
        found[Reason.NO_EVIDENCE] = "policy requires a licence document (evidence)"
    reasons = sorted(found)
    return Decision(not reasons, reasons, [f"{r}: {found[r]}" for r in reasons])


def _grant_problems(licence: License, policy: Policy):
    lid = licence.id
    if lid in _PUBLIC_DOMAIN:
        return
    if match := _CC.match(lid):
        if match["nc"] and (policy.purpose == "commercial" or not policy.allow.non_commercial):
            yield Reason.USE_NOT_GRANTED, f"{lid} is NonCommercial; corpus is {policy.purpose}"
        if match["variant"] == "-ND" and not policy.allow.no_derivatives:
            yield Reason.USE_NOT_GRANTED, f"{lid} is NoDerivatives; policy refuses it"
        if match["variant"] == "-SA" and not policy.allow.share_alike:
            yield Reason.USE_NOT_GRANTED, f"{lid} is ShareAlike; policy refuses it"
        return
    if _CONTRACT.match(lid) and lid != "LicenseRef-PDM":
        if "ai_training" not in licence.uses:
            yield Reason.USE_NOT_GRANTED, f"contract {lid} does not grant ai_training"
        elif policy.purpose == "commercial" and "commercial" not in licence.uses:
            yield Reason.USE_NOT_GRANTED, f"contract {lid} does not grant commercial use"
        return
    yield Reason.LICENSE_UNKNOWN, f"licence {lid!r} is not a known SPDX id or LicenseRef"


def uncovered_territories(licence: License, wanted: list[str]) -> list[str]:
    """Training territories the grant does not cover (`Worldwide` means all but exclusions)."""
    granted = set(licence.territories)
    excluded = set(licence.excluded_territories)
    if WORLDWIDE in wanted:
        if WORLDWIDE in granted and not excluded:
            return []
        return [WORLDWIDE] if WORLDWIDE not in granted else sorted(excluded)
    if WORLDWIDE in granted:
        return sorted(t for t in wanted if t in excluded)
    return sorted(t for t in wanted if t not in granted or t in excluded)
