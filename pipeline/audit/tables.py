"""The audit tables: a version's manifest and decision records in, lists of flat rows out.

Pure (no database, no store) so the same tables feed the HTML report, the CSV and JSON
exports, the attribution list and the training-data summary. Every cell is a str, int,
float, bool or None, so a table exports identically to CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date

from pipeline.items import Status
from pipeline.licensing.decide import licence_family
from pipeline.reasons import MEANINGS, Reason

WORLDWIDE = "Worldwide"
NO_LICENCE = "(none)"
OPEN_ENDED = "open-ended"
FAMILY_ORDER = ("public-domain", "cc", "contract", "unknown", "none")
EXPIRING_DAYS = 90

COLUMNS: dict[str, tuple[str, ...]] = {
    "version": ("fact", "value"),
    "by_partner": ("partner", "accepted", "refused", "items", "hours"),
    "by_licence_family": ("family", "accepted", "refused", "hours"),
    "by_licence": ("licence_id", "family", "accepted", "refused", "hours"),
    "by_territory": ("territory", "granted", "excluded"),
    "expiry_by_month": ("month", "items"),
    "expiring_soon": (
        "item_key",
        "partner",
        "title",
        "licence_id",
        "valid_until",
        "days_left",
    ),
    "refusals_by_reason": ("reason", "items", "meaning"),
    "refusals_by_partner": ("partner", "reason", "items"),
    "refused_items": (
        "item_key",
        "partner",
        "title",
        "licence_id",
        "stage",
        "reasons",
        "messages",
    ),
    "accepted_items": (
        "item_key",
        "partner",
        "isrc",
        "title",
        "artists",
        "licence_id",
        "family",
        "territories",
        "valid_from",
        "valid_until",
        "evidence_uri",
        "shard",
        "duration_s",
    ),
    "changes_summary": ("subject", "change", "count"),
    "changes": ("item_key", "partner", "title", "change", "reasons", "detail"),
    "attribution": (
        "item_key",
        "title",
        "author",
        "source",
        "licence_id",
        "licence_url",
        "attribution",
        "attribution_given",
        "required",
    ),
}

_CC_ID = re.compile(
    r"^CC-BY(?P<elements>(?:-NC)?(?:-ND|-SA)?)-(?P<version>\d\.\d)(?:-(?P<port>[A-Z]{2,3}))?$",
    re.IGNORECASE,
)
_PD_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "LICENSEREF-PDM": "https://creativecommons.org/publicdomain/mark/1.0/",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- record accessors: tolerant of the partial records METADATA_INVALID leaves ---


def licence(record: dict) -> dict:
    return record.get("license") or {}


def licence_id(record: dict) -> str:
    return licence(record).get("id") or NO_LICENCE


def family(record: dict) -> str:
    lid = licence(record).get("id")
    return licence_family(lid) if lid else "none"


def duration_s(record: dict) -> float | None:
    for source in ("descriptors", "quality"):
        value = (record.get(source) or {}).get("duration_s")
        if isinstance(value, int | float):
            return float(value)
    return None


def hours(records: Iterable[dict]) -> float:
    return round(sum(duration_s(r) or 0.0 for r in records) / 3600, 3)


def accepted(decisions: Iterable[dict]) -> list[dict]:
    return sorted((d for d in decisions if d.get("status") == Status.ACCEPTED), key=_key)


def refused(decisions: Iterable[dict]) -> list[dict]:
    return sorted((d for d in decisions if d.get("status") == Status.REJECTED), key=_key)


def authors(record: dict) -> str:
    return ", ".join(str(a) for a in record.get("artists") or [])


def as_date(value: object) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def deed_url(lid: str) -> str | None:
    """The Creative Commons deed for a CC or public-domain id; contracts have none."""
    if lid.upper() in _PD_URLS:
        return _PD_URLS[lid.upper()]
    match = _CC_ID.match(lid)
    if not match:
        return None
    port = f"{match['port'].lower()}/" if match["port"] else ""
    return f"https://creativecommons.org/licenses/by{match['elements'].lower()}/{match['version']}/{port}"


def licence_name(lid: str) -> str:
    """`CC-BY-NC-SA-4.0` -> `CC BY-NC-SA 4.0`, the form CC asks attributions to use."""
    if lid.upper() == "CC0-1.0":
        return "CC0 1.0"
    if lid.upper() == "LICENSEREF-PDM":
        return "Public Domain Mark 1.0"
    match = _CC_ID.match(lid)
    if not match:
        return lid
    port = f" {match['port'].upper()}" if match["port"] else ""
    return f"CC BY{match['elements'].upper()} {match['version']}{port}"


def _key(record: dict) -> str:
    return str(record.get("item_key") or "")


def _join(values: Iterable[object] | None) -> str:
    return "; ".join(str(v) for v in values or [])


def _reasons(record: dict) -> list[str]:
    return [str(r) for r in record.get("reasons") or []]


def _reason_rank(code: str) -> int:
    order = list(Reason)
    return order.index(Reason(code)) if code in Reason.__members__ else len(order)


def _meaning(code: str) -> str:
    return MEANINGS[Reason(code)] if code in Reason.__members__ else "not a known reason code"


def _partners(manifest: dict, decisions: list[dict]) -> list[str]:
    listed = list(manifest.get("partners") or [])
    extra = sorted({str(d.get("partner")) for d in decisions} - set(listed))
    return listed + extra


def territory_text(record: dict) -> str:
    lic = licence(record)
    granted = ", ".join(lic.get("territories") or [])
    excluded = ", ".join(lic.get("excluded_territories") or [])
    return f"{granted} except {excluded}" if excluded else granted


# --- the tables ---


def version_facts(manifest: dict, decisions: list[dict]) -> list[dict]:
    """Manifest facts beside the counts recomputed from records, so a mismatch shows."""
    counts = manifest.get("counts") or {}
    policy = manifest.get("policy") or {}
    facts = [
        ("version", manifest.get("version")),
        ("run_id", manifest.get("run_id")),
        ("as_of", manifest.get("as_of")),
        ("created_at", manifest.get("created_at")),
        ("parent", manifest.get("parent")),
        ("policy", policy.get("name")),
        ("policy_purpose", policy.get("purpose")),
        ("policy_hash", manifest.get("policy_hash")),
        ("descriptor_set", manifest.get("descriptor_set")),
        ("partners", len(manifest.get("partners") or [])),
        ("shards", len(manifest.get("shards") or [])),
        ("shard_bytes", sum(s.get("bytes", 0) for s in manifest.get("shards") or [])),
        ("rows (manifest)", counts.get("rows")),
        ("accepted (manifest)", counts.get("accepted")),
        ("accepted (decision records)", len(accepted(decisions))),
        ("refused items (manifest)", counts.get("rejected_items")),
        ("refused items (decision records)", len(refused(decisions))),
        ("accepted hours", hours(accepted(decisions))),
    ]
    return [{"fact": k, "value": v} for k, v in facts]


def by_partner(manifest: dict, decisions: list[dict]) -> list[dict]:
    rows = []
    for partner in _partners(manifest, decisions):
        mine = [d for d in decisions if d.get("partner") == partner]
        ok = accepted(mine)
        rows.append(
            {
                "partner": partner,
                "accepted": len(ok),
                "refused": len(refused(mine)),
                "items": len(mine),
                "hours": hours(ok),
            }
        )
    return rows


def by_licence_family(decisions: list[dict]) -> list[dict]:
    present = {family(d) for d in decisions}
    rows = []
    for fam in FAMILY_ORDER:
        if fam not in present:
            continue
        mine = [d for d in decisions if family(d) == fam]
        ok = accepted(mine)
        rows.append(
            {"family": fam, "accepted": len(ok), "refused": len(refused(mine)), "hours": hours(ok)}
        )
    return rows


def by_licence(decisions: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for d in decisions:
        groups.setdefault(licence_id(d), []).append(d)
    rows = [
        {
            "licence_id": lid,
            "family": family(items[0]),
            "accepted": len(accepted(items)),
            "refused": len(refused(items)),
            "hours": hours(accepted(items)),
        }
        for lid, items in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r["accepted"], -r["refused"], r["licence_id"]))


def by_territory(decisions: list[dict]) -> list[dict]:
    """Where the accepted licences are valid: Worldwide grants, listed countries, carve-outs."""
    granted: Counter[str] = Counter()
    excluded: Counter[str] = Counter()
    for d in accepted(decisions):
        granted.update(set(licence(d).get("territories") or []))
        excluded.update(set(licence(d).get("excluded_territories") or []))
    codes = sorted(set(granted) | set(excluded), key=lambda t: (t != WORLDWIDE, t))
    return [{"territory": t, "granted": granted[t], "excluded": excluded[t]} for t in codes]


def expiry_by_month(decisions: list[dict]) -> list[dict]:
    months: Counter[str] = Counter()
    for d in accepted(decisions):
        until = as_date(licence(d).get("valid_until"))
        months[f"{until:%Y-%m}" if until else OPEN_ENDED] += 1
    order = sorted(m for m in months if m != OPEN_ENDED)
    if OPEN_ENDED in months:
        order.append(OPEN_ENDED)
    return [{"month": m, "items": months[m]} for m in order]


def expiring_soon(manifest: dict, decisions: list[dict], days: int = EXPIRING_DAYS) -> list[dict]:
    """Accepted items whose licence ends within `days` of the version's logical date."""
    as_of = as_date(manifest.get("as_of"))
    if as_of is None:
        return []
    rows = []
    for d in accepted(decisions):
        until = as_date(licence(d).get("valid_until"))
        if until is not None and (until - as_of).days <= days:
            rows.append(
                {
                    "item_key": d.get("item_key"),
                    "partner": d.get("partner"),
                    "title": d.get("title"),
                    "licence_id": licence_id(d),
                    "valid_until": until.isoformat(),
                    "days_left": (until - as_of).days,
                }
            )
    return sorted(rows, key=lambda r: (r["days_left"], r["item_key"]))


def refusals_by_reason(decisions: list[dict]) -> list[dict]:
    """Refused items per reason code; an item refused for two reasons counts under both."""
    counts = Counter(code for d in refused(decisions) for code in set(_reasons(d)))
    codes = sorted(counts, key=lambda c: (-counts[c], _reason_rank(c), c))
    return [{"reason": c, "items": counts[c], "meaning": _meaning(c)} for c in codes]


def refusals_by_partner(decisions: list[dict]) -> list[dict]:
    counts = Counter(
        (str(d.get("partner")), code) for d in refused(decisions) for code in set(_reasons(d))
    )
    keys = sorted(counts, key=lambda k: (k[0], _reason_rank(k[1]), k[1]))
    return [{"partner": p, "reason": r, "items": counts[(p, r)]} for p, r in keys]


def refused_items(decisions: list[dict]) -> list[dict]:
    return [
        {
            "item_key": d.get("item_key"),
            "partner": d.get("partner"),
            "title": d.get("title"),
            "licence_id": licence_id(d),
            "stage": d.get("stage"),
            "reasons": _join(_reasons(d)),
            "messages": _join(d.get("messages")),
        }
        for d in refused(decisions)
    ]


def accepted_items(decisions: list[dict]) -> list[dict]:
    return [
        {
            "item_key": d.get("item_key"),
            "partner": d.get("partner"),
            "isrc": d.get("isrc"),
            "title": d.get("title"),
            "artists": _join(d.get("artists")),
            "licence_id": licence_id(d),
            "family": family(d),
            "territories": territory_text(d),
            "valid_from": licence(d).get("valid_from"),
            "valid_until": licence(d).get("valid_until"),
            "evidence_uri": (licence(d).get("evidence") or {}).get("uri"),
            "shard": d.get("shard"),
            "duration_s": duration_s(d),
        }
        for d in accepted(decisions)
    ]


_COMPARED = ("title", "artists", "isrc", "license", "audio_sha256")


def changes(decisions: list[dict], parent_decisions: list[dict] | None) -> list[dict]:
    """Items that entered, left or changed since the parent version, with why they left."""
    if parent_decisions is None:
        return []
    now = {d.get("item_key"): d for d in decisions}
    before = {d.get("item_key"): d for d in parent_decisions}
    now_in = {k for k, d in now.items() if d.get("status") == Status.ACCEPTED}
    before_in = {k for k, d in before.items() if d.get("status") == Status.ACCEPTED}
    rows = []
    for key in sorted(now_in - before_in, key=str):
        earlier = before.get(key)
        detail = (
            f"refused in the parent: {_join(_reasons(earlier))}"
            if earlier
            else "new in the deliveries"
        )
        rows.append(_change_row(now[key], "added", [], detail))
    for key in sorted(before_in - now_in, key=str):
        current = now.get(key)
        if current is None:
            rows.append(_change_row(before[key], "removed", [], "no longer delivered"))
        else:
            rows.append(
                _change_row(
                    {**before[key], **current},
                    "removed",
                    _reasons(current),
                    _join(current.get("messages")) or f"status {current.get('status')}",
                )
            )
    for key in sorted(now_in & before_in, key=str):
        fields = [f for f in _COMPARED if now[key].get(f) != before[key].get(f)]
        if fields:
            rows.append(_change_row(now[key], "updated", [], f"changed: {', '.join(fields)}"))
    return rows


def _change_row(record: dict, change: str, reasons: list[str], detail: str) -> dict:
    return {
        "item_key": record.get("item_key"),
        "partner": record.get("partner"),
        "title": record.get("title"),
        "change": change,
        "reasons": _join(reasons),
        "detail": detail,
    }


def changes_summary(
    manifest: dict,
    decisions: list[dict],
    parent_manifest: dict | None = None,
    parent_decisions: list[dict] | None = None,
) -> list[dict]:
    """Item counts from the records (given the parent's), shard counts from the manifest."""
    rows = []
    if parent_decisions is not None:
        changed = Counter(r["change"] for r in changes(decisions, parent_decisions))
        kept = {d.get("item_key") for d in accepted(decisions)} & {
            d.get("item_key") for d in accepted(parent_decisions)
        }
        for change in ("added", "removed", "updated"):
            rows.append({"subject": "items", "change": change, "count": changed[change]})
        rows.append(
            {"subject": "items", "change": "unchanged", "count": len(kept) - changed["updated"]}
        )
    if manifest.get("parent") or parent_manifest is not None:
        shard_changes = manifest.get("changes") or {}
        for change in ("reused", "written", "dropped"):
            count = shard_changes.get(f"{change}_shards")
            if count is not None:
                rows.append({"subject": "shards", "change": change, "count": count})
        if shard_changes.get("duplicates") is not None:
            rows.append(
                {"subject": "items", "change": "duplicates", "count": shard_changes["duplicates"]}
            )
    return rows


def attribution(decisions: list[dict]) -> list[dict]:
    """Accepted items whose licence asks for credit (CC BY, contract); public domain as courtesy."""
    rows = []
    for d in accepted(decisions):
        fam = family(d)
        if fam not in ("cc", "contract", "public-domain"):
            continue
        lid = licence_id(d)
        given = (licence(d).get("attribution") or "").strip()
        rows.append(
            {
                "item_key": d.get("item_key"),
                "title": d.get("title"),
                "author": authors(d),
                "source": d.get("partner"),
                "licence_id": lid,
                "licence_url": deed_url(lid),
                "attribution": given or tasl(d),
                "attribution_given": bool(given),
                "required": fam != "public-domain",
            }
        )
    return sorted(rows, key=lambda r: (not r["required"], str(r["item_key"])))


def tasl(record: dict) -> str:
    """Title, Author, Source, Licence: CC's recommended credit line, when none was delivered."""
    lid = licence_id(record)
    by = f" by {authors(record)}" if authors(record) else ""
    source = f", from {record.get('partner')}"
    if family(record) == "contract":
        return f'"{record.get("title") or ""}"{by}{source}, used under licence {lid}'
    return f'"{record.get("title") or ""}"{by}{source}, licensed under {licence_name(lid)}'


def all_tables(
    manifest: dict,
    decisions: list[dict],
    parent_manifest: dict | None = None,
    parent_decisions: list[dict] | None = None,
    expiring_days: int = EXPIRING_DAYS,
) -> dict[str, list[dict]]:
    """Every table of the report, keyed by its export name (the keys of `COLUMNS`)."""
    decisions = list(decisions)
    return {
        "version": version_facts(manifest, decisions),
        "by_partner": by_partner(manifest, decisions),
        "by_licence_family": by_licence_family(decisions),
        "by_licence": by_licence(decisions),
        "by_territory": by_territory(decisions),
        "expiry_by_month": expiry_by_month(decisions),
        "expiring_soon": expiring_soon(manifest, decisions, expiring_days),
        "refusals_by_reason": refusals_by_reason(decisions),
        "refusals_by_partner": refusals_by_partner(decisions),
        "refused_items": refused_items(decisions),
        "accepted_items": accepted_items(decisions),
        "changes_summary": changes_summary(manifest, decisions, parent_manifest, parent_decisions),
        "changes": changes(decisions, parent_decisions),
        "attribution": attribution(decisions),
    }


# --- export ---


def neutralise(value: object) -> str:
    """A CSV cell as text; one starting like a formula gets a quote so spreadsheets show it."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def csv_text(rows: list[dict], columns: Iterable[str]) -> str:
    columns = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(c)) for c in columns])
    return out.getvalue()
