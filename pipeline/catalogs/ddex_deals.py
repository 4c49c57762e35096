"""From DDEX deals to the licence of one recording: pure rules, no XML, no I/O.

The deals reaching a recording (Deal -> DealReleaseReference -> Release ->
ReleaseResourceReference) give its licence: `uses` are the partner mapping of the deal's
UseTypes (plus CommercialModelTypes once any use is granted); nothing is granted unless
mapped. Territory and excluded codes, validity start/end become the licence's. The id is the
CC licence a DealReference names, else `LicenseRef-<partner>-<DealReference>` (or
`<release id>-deal<n>`). Granting deals with identical terms merge their uses; when several
differ, the one in force on the message's creation date is taken (else the next to start),
so a record never claims more than one deal grants. A 3.x `TakeDown`/`AllDealsCancelled`
revokes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlparse

from pipeline.catalogs.ddex_xml import Message
from pipeline.catalogs.partners import DdexMapping
from pipeline.licensing.territories import WORLDWIDE


@dataclass
class Term:
    """One deal's terms for one validity period, as they apply to one recording."""

    uses: set[str]
    territories: list[str]
    excluded: list[str]
    valid_from: date | None
    valid_until: date | None
    licence_id: str
    takedown: bool
    cc: bool


def releases_by_resource(message: Message) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for release in message.releases.values():
        for resource in release["resources"]:
            found.setdefault(resource, []).append(release["ids"])
    return found


def terms_by_resource(
    partner: str, message: Message, mapping: DdexMapping
) -> dict[str, list[Term]]:
    found: dict[str, list[Term]] = {}
    for release_deal in message.deals:
        for release_ref in release_deal["releases"]:
            release = message.releases.get(release_ref)
            if release is None:
                continue
            for index, deal in enumerate(release_deal["deals"], start=1):
                licence_id, cc = _licence_id(partner, deal["references"], release, index)
                uses = {u.value for t in deal["use_types"] for u in mapping.use_types.get(t, [])}
                if uses:
                    uses |= {
                        u.value
                        for c in deal["commercial"]
                        for u in mapping.commercial_models.get(c, [])
                    }
                territories = deal["territories"] or ([WORLDWIDE] if deal["excluded"] else [])
                for start, end in deal["periods"] or [(None, None)]:
                    term = Term(
                        uses=uses,
                        territories=territories,
                        excluded=deal["excluded"],
                        valid_from=start,
                        valid_until=end,
                        licence_id=licence_id,
                        takedown=deal["takedown"],
                        cc=cc,
                    )
                    for resource in release["resources"]:
                        found.setdefault(resource, []).append(term)
    return found


def licence_for(candidates: list[Term], message: Message) -> dict:
    """One licence per recording, as one grant of the message states it.

    Deals with the same terms (granted uses, which include the mapped commercial models;
    exclusions; validity; the CC licence, or a contract) that differ only in territory are
    one grant over the union of their territories: labels send a deal per country. Deals
    whose terms differ
    stay apart, and the broadest grant in force on the message date is taken, so the record
    never claims more than one deal grants. The message is the licence document: its
    location and sha256 are the evidence."""
    on = message.created.date() if message.created else None
    takedowns = [t for t in candidates if t.takedown]
    grants = [t for t in candidates if (t.uses or t.cc) and not t.takedown]
    groups: dict[tuple, Term] = {}
    for term in grants:
        key = (
            frozenset(term.uses),
            term.licence_id if term.cc else None,
            tuple(term.excluded),
            term.valid_from,
            term.valid_until,
        )
        if key in groups:
            groups[key].territories = _union(groups[key].territories, term.territories)
        else:
            groups[key] = Term(**{**term.__dict__, "territories": list(term.territories)})
    chosen = _pick(list(groups.values()), on) if groups else candidates[0]
    licence: dict = {
        "id": chosen.licence_id,
        "uses": sorted(chosen.uses) if groups else [],
        "territories": chosen.territories,
        "excluded_territories": chosen.excluded,
    }
    if chosen.valid_from:
        licence["valid_from"] = chosen.valid_from.isoformat()
    if chosen.valid_until:
        licence["valid_until"] = chosen.valid_until.isoformat()
    if message.evidence:
        licence["evidence"] = dict(message.evidence)
    if takedowns:
        first = min(takedowns, key=lambda t: t.valid_from or on or date.min)
        licence["revoked"] = {
            "date": (first.valid_from or on or date.min).isoformat(),
            "reason": f"DDEX takedown in message {message.message_id or '?'} ({first.licence_id})",
        }
    return licence


def _union(first: list[str], second: list[str]) -> list[str]:
    if WORLDWIDE in first or WORLDWIDE in second:
        return [WORLDWIDE]
    return first + [t for t in second if t not in first]


def _pick(groups: list[Term], on: date | None) -> Term:
    """The broadest grant in force on `on` (the message date), else the next to start,
    else the last to end."""
    if on:
        current = [
            t for t in groups if (t.valid_from or date.min) <= on <= (t.valid_until or date.max)
        ]
        if current:
            return max(current, key=_breadth)
        future = [t for t in groups if t.valid_from and t.valid_from > on]
        if future:
            return min(future, key=lambda t: t.valid_from)
    return max(groups, key=lambda t: t.valid_until or date.max)


def _breadth(term: Term) -> tuple:
    return (len(term.uses), WORLDWIDE in term.territories, len(term.territories))


def _licence_id(partner: str, references: list[str], release: dict, index: int) -> tuple[str, bool]:
    for reference in references:
        cc = cc_licence(reference)
        if cc:
            return cc, True
    if references and references[0]:
        contract = references[0]
    else:
        contract = f"{release['ids'][0] if release['ids'] else 'release'}-deal{index}"
    return f"LicenseRef-{_token(partner)}-{_token(contract)}", False


def cc_licence(text: str) -> str | None:
    """The SPDX id of a Creative Commons licence named by id or creativecommons.org URL."""
    from pipeline.licensing.decide import licence_family

    text = text.strip()
    parsed = urlparse(text)
    if parsed.netloc.endswith("creativecommons.org"):
        parts = [p for p in parsed.path.split("/") if p]
        if parts[:2] == ["publicdomain", "zero"] and len(parts) >= 3:
            text = f"CC0-{parts[2]}"
        elif parts[:1] == ["licenses"] and len(parts) >= 3:
            text = f"CC-{parts[1].upper()}-{parts[2]}" + (
                f"-{parts[3].upper()}" if len(parts) > 3 else ""
            )
    if licence_family(text) not in ("cc", "public-domain") or text.upper() == "LICENSEREF-PDM":
        return None
    return text.upper()


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", ".", text).strip(".-") or "x"
