"""Read-side queries behind `corpus versions` and `corpus trace`."""

from __future__ import annotations

import json

from pipeline.config import Settings
from pipeline.items import Status
from pipeline.provenance import connect
from pipeline.shards.manifest import load_manifest, manifest_key, manifest_versions
from pipeline.storage import open_store


def list_versions(settings: Settings) -> list[dict]:
    """Committed versions from the store's manifests, oldest first, with their withdrawal
    (from provenance) when a later version removed revoked or expired items they hold."""
    store = open_store(settings.store)
    prov = connect(settings, write=False)
    try:
        withdrawals = {v["_id"]: v for v in prov.versions() if v.get("withdrawn")}
    finally:
        prov.close()
    rows = []
    for version in manifest_versions(store):
        manifest = load_manifest(store, version)
        key = manifest_key(version)
        counts = manifest["counts"]
        rows.append(
            {
                "version": manifest["version"],
                "as_of": manifest["as_of"],
                "created_at": manifest["created_at"],
                "accepted": counts["accepted"],
                "rejected_items": counts["rejected_items"],
                "rejected": counts["rejected"],
                "shards": len(manifest["shards"]),
                "parent": manifest["parent"],
                "manifest": store.url(key),
                "withdrawn_by": withdrawals.get(manifest["version"], {}).get("withdrawn_by"),
            }
        )
    return sorted(rows, key=lambda r: r["created_at"])


def list_deliveries(settings: Settings, partner: str | None = None) -> list[dict]:
    """Deliveries oldest first; `same_as` names the version whose delivery of the same
    partner had the same digest just before (nothing changed in between)."""
    prov = connect(settings, write=False)
    try:
        found = prov.delivery_log(partner)
    finally:
        prov.close()
    last: dict[str, dict] = {}
    rows = []
    for doc in found:
        previous = last.get(doc["partner"])
        same = previous["version"] if previous and previous["digest"] == doc["digest"] else None
        rows.append({**_public(doc), "same_as": same})
        last[doc["partner"]] = doc
    return rows


def trace_item(settings: Settings, key: str) -> list[dict]:
    """The whole history of the track(s) `key` names (`partner:track_id`, or an ISRC, which
    several partners may deliver): one entry per item key, empty when nothing is known."""
    prov = connect(settings, write=False)
    try:
        versions = {v["_id"]: v for v in prov.versions()}
        decisions = sorted(
            prov.trace(key),
            key=lambda d: (str(versions.get(d["version"], {}).get("created_at", "")), d["version"]),
        )
        keys = list(dict.fromkeys(d["item_key"] for d in decisions))
        return [
            item_history(prov, [d for d in decisions if d["item_key"] == k], versions) for k in keys
        ]
    finally:
        prov.close()


def item_history(prov, decisions: list[dict], versions: dict[str, dict]) -> dict:
    """Deliveries, licence versions, decisions, audio, shard rows, versions and revocations of
    one item, oldest first; `decisions` are the item's, in the order the versions were made."""
    for record in decisions:
        meta = versions.get(record["version"], {})
        record["committed"] = meta.get("status") == "committed"
        record["withdrawn"] = bool(meta.get("withdrawn")) and record["item_key"] in meta.get(
            "withdrawn_items", []
        )
        record.pop("_id", None)
    latest = decisions[-1]
    item_key = latest["item_key"]
    delivery_ids = list(
        dict.fromkeys(
            d["delivery"] for d in decisions if d.get("delivery") and not d.get("kept_undelivered")
        )
    )
    sources = {d.get("delivery"): d.get("source") for d in decisions}
    deliveries = [
        {**_public(d), "source": sources.get(d["_id"])} for d in prov.deliveries(delivery_ids)
    ]
    licences: list[dict] = []
    for record in decisions:
        licence = record.get("license")
        if licence and (not licences or licences[-1]["license"] != licence):
            licences.append({"license": licence, "from_version": record["version"]})
    audio = next((d for d in reversed(decisions) if d.get("audio_sha256")), {})
    current = prov.item(item_key)
    return {
        "item_key": item_key,
        "title": latest.get("title") or _raw_title(latest.get("raw_json")),
        "artists": latest.get("artists") or [],
        "isrc": latest.get("isrc"),
        "current": _public(current) if current else None,
        "deliveries": deliveries,
        "licences": licences,
        "audio": {
            "location": audio.get("audio_location") or latest.get("audio_location"),
            "sha256": audio.get("audio_sha256"),
            "bytes": audio.get("audio_bytes"),
            "descriptor_set": audio.get("descriptor_set"),
        },
        "shards": [
            {"path": s["_id"], "row": s["row"], "versions": s.get("versions", [])}
            for s in prov.shards_holding(item_key)
        ],
        "in_versions": [
            {"version": d["version"], "withdrawn": d["withdrawn"]}
            for d in decisions
            if d["status"] == Status.ACCEPTED and d["committed"]
        ],
        "revocations": [
            _public(r)
            for r in prov.revocations_for(
                latest["partner"],
                latest["track_id"],
                sorted({lic["license"].get("id") for lic in licences}),
            )
        ],
        "events": [_public(e) for e in prov.events_about(item_key)],
        "decisions": decisions,
    }


def _raw_title(raw_json: str | None) -> str | None:
    """The title a rejected raw record gave, if it is readable text."""
    try:
        title = json.loads(raw_json or "null")
    except ValueError:
        return None
    title = title.get("title") if isinstance(title, dict) else None
    return title if isinstance(title, str) else None


def _public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_id", "config_json")}


def version_summary(settings: Settings, version: str | None = None) -> dict | None:
    """The refresh summary of `version` (default: latest committed), with trace examples."""
    from pipeline.refresh import summary

    rows = list_versions(settings)
    if version:
        rows = [r for r in rows if r["version"] == version]
    if not rows:
        return None
    row = rows[-1]
    store = open_store(settings.store)
    manifest = json.loads(store.get(f"versions/{row['version']}/manifest.json"))
    result = summary(manifest, row["manifest"])
    prov = connect(settings, write=False)
    try:
        result.update(prov.examples(row["version"]))
    finally:
        prov.close()
    return result
