"""Read-side queries behind `corpus versions` and `corpus trace`."""

from __future__ import annotations

import json

from pipeline.config import Settings
from pipeline.provenance import connect
from pipeline.storage import open_store


def list_versions(settings: Settings) -> list[dict]:
    """Committed versions from the store's manifests, oldest first."""
    store = open_store(settings.store)
    rows = []
    for key in store.list("versions/"):
        if not key.endswith("/manifest.json"):
            continue
        manifest = json.loads(store.get(key))
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
            }
        )
    return sorted(rows, key=lambda r: r["created_at"])


def trace_item(settings: Settings, key: str) -> list[dict]:
    prov = connect(settings, write=False)
    try:
        records = prov.trace(key)
        statuses = {v["_id"]: v.get("status") for v in prov.versions()}
    finally:
        prov.close()
    for record in records:
        record["committed"] = statuses.get(record["version"]) == "committed"
        record.pop("_id", None)
    return records


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
