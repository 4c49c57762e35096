"""A public training-data summary of one corpus version, generated from its records only.

Its sections follow the EU AI Act's template for the public summary of training content
of general-purpose AI models (general information, data sources, data processing), plus
the time span of the data. Nothing in it is typed by hand: every figure is counted here.
"""

from __future__ import annotations

from collections import Counter

from pipeline.audit import tables as t
from pipeline.audit.attribution import md_escape
from pipeline.reasons import Reason

OPT_OUT_REASONS = (Reason.TDM_OPT_OUT, Reason.REVOKED)


def training_data_summary(manifest: dict, decisions: list[dict]) -> dict:
    decisions = list(decisions)
    accepted = t.accepted(decisions)
    refused = t.refused(decisions)
    return {
        "general_information": _general(manifest, accepted),
        "data_sources": _sources(manifest, decisions),
        "data_processing": _processing(manifest, decisions, accepted, refused),
        "time_span": _time_span(manifest, accepted),
        "other_information": {
            "policy_hash": manifest.get("policy_hash"),
            "descriptor_set": manifest.get("descriptor_set"),
            "run_id": manifest.get("run_id"),
            "attribution_required_items": sum(r["required"] for r in t.attribution(decisions)),
            "shard_checksums": "sha256 and crc32c of every shard are in the version manifest",
        },
    }


def _general(manifest: dict, accepted: list[dict]) -> dict:
    shards = manifest.get("shards") or []
    return {
        "corpus_version": manifest.get("version"),
        "date": manifest.get("created_at"),
        "as_of": manifest.get("as_of"),
        "parent_version": manifest.get("parent"),
        "modality": "audio",
        "tracks": len(accepted),
        "hours": t.hours(accepted),
        "tracks_without_duration": sum(t.duration_s(d) is None for d in accepted),
        "shards": len(shards),
        "bytes": sum(s.get("bytes", 0) for s in shards),
    }


def _sources(manifest: dict, decisions: list[dict]) -> dict:
    partners = []
    for row in t.by_partner(manifest, decisions):
        mine = t.accepted(d for d in decisions if d.get("partner") == row["partner"])
        partners.append(
            {
                "partner": row["partner"],
                "tracks": row["accepted"],
                "hours": row["hours"],
                "items_delivered": row["items"],
                "refused": row["refused"],
                "licence_families": dict(sorted(Counter(t.family(d) for d in mine).items())),
                "licence_ids": sorted({t.licence_id(d) for d in mine}),
            }
        )
    return {
        "category": "licensed data obtained from catalog partners (rights holders or their agents)",
        "partners": partners,
        "licence_families": {r["family"]: r["accepted"] for r in t.by_licence_family(decisions)},
    }


def _processing(
    manifest: dict, decisions: list[dict], accepted: list[dict], refused: list[dict]
) -> dict:
    policy = manifest.get("policy") or {}
    reasons = {r["reason"]: r["items"] for r in t.refusals_by_reason(decisions)}
    return {
        "licence_policy": {
            "name": policy.get("name"),
            "purpose": policy.get("purpose"),
            "required_uses": policy.get("required_uses"),
            "territories": policy.get("territories"),
            "allow": policy.get("allow"),
            "require_evidence": policy.get("require_evidence"),
            "min_validity_days": policy.get("min_validity_days"),
        },
        "items_judged": len(decisions),
        "items_accepted": len(accepted),
        "items_refused": len(refused),
        "refused_by_reason": reasons,
        "opt_out_handling": {
            "rule": (
                "a licence flagged tdm_opt_out is refused (TDM_OPT_OUT) and a revoked licence "
                "is refused from its revocation date (REVOKED); refused audio is never fetched"
            ),
            "refused_tdm_opt_out": reasons.get(Reason.TDM_OPT_OUT.value, 0),
            "refused_revoked": reasons.get(Reason.REVOKED.value, 0),
            "accepted_with_opt_out": sum(bool(t.licence(d).get("tdm_opt_out")) for d in accepted),
            "accepted_with_revocation": sum(bool(t.licence(d).get("revoked")) for d in accepted),
        },
        "duplicates_refused": reasons.get(Reason.DUPLICATE.value, 0),
        "audio_quality_refused": sum(n for code, n in reasons.items() if code.startswith("AUDIO_")),
    }


def _time_span(manifest: dict, accepted: list[dict]) -> dict:
    starts = [t.as_date(t.licence(d).get("valid_from")) for d in accepted]
    ends = [t.as_date(t.licence(d).get("valid_until")) for d in accepted]
    known_starts = [d for d in starts if d]
    known_ends = [d for d in ends if d]
    return {
        "as_of": manifest.get("as_of"),
        "licence_valid_from_earliest": min(known_starts).isoformat() if known_starts else None,
        "licence_valid_until_earliest": min(known_ends).isoformat() if known_ends else None,
        "licence_valid_until_latest": max(known_ends).isoformat() if known_ends else None,
        "licences_without_end_date": len(ends) - len(known_ends),
    }


def summary_markdown(summary: dict) -> str:
    """The summary as Markdown, one section per template heading."""
    general = summary["general_information"]
    sources = summary["data_sources"]
    processing = summary["data_processing"]
    opt = processing["opt_out_handling"]
    span = summary["time_span"]
    policy = processing["licence_policy"]
    lines = [
        f"# Training-data summary: corpus version {md_escape(general['corpus_version'])}",
        "",
        "## 1. General information",
        "",
        *_bullets(general),
        "",
        "## 2. List of data sources",
        "",
        f"All accepted tracks are {sources['category']}.",
        "",
        "| partner | tracks | hours | refused | licence families | licence ids |",
        "|---|---:|---:|---:|---|---|",
        *(
            f"| {md_escape(p['partner'])} | {p['tracks']} | {p['hours']} | {p['refused']} | "
            f"{_pairs(p['licence_families'])} | {md_escape(', '.join(p['licence_ids']))} |"
            for p in sources["partners"]
        ),
        "",
        "## 3. Data processing",
        "",
        f"- licence policy: {md_escape(policy['name'])} ({md_escape(policy['purpose'])}); "
        f"required uses {md_escape(policy['required_uses'])}; "
        f"territories {md_escape(policy['territories'])}",
        f"- items judged {processing['items_judged']}, accepted {processing['items_accepted']}, "
        f"refused {processing['items_refused']}",
        f"- refused by reason: {_pairs(processing['refused_by_reason']) or 'none'}",
        f"- opt-outs and revocations: {opt['rule']}",
        f"- refused for TDM_OPT_OUT: {opt['refused_tdm_opt_out']}; "
        f"refused for REVOKED: {opt['refused_revoked']}; "
        f"accepted with an opt-out flag: {opt['accepted_with_opt_out']}; "
        f"accepted with a revocation on record: {opt['accepted_with_revocation']}",
        f"- duplicates refused: {processing['duplicates_refused']}; "
        f"refused by the audio quality gate: {processing['audio_quality_refused']}",
        "",
        "## 4. Time span of the data",
        "",
        *_bullets(span),
        "",
        "## 5. Other information",
        "",
        *_bullets(summary["other_information"]),
        "",
    ]
    return "\n".join(lines)


def _bullets(section: dict) -> list[str]:
    return [f"- {k.replace('_', ' ')}: {md_escape(v)}" for k, v in section.items()]


def _pairs(counts: dict) -> str:
    return md_escape(", ".join(f"{k} {v}" for k, v in counts.items()))
