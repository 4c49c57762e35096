"""`corpus gc`: remove shard objects no committed version references (left by crashed runs).

A shard is kept when any committed manifest lists it, or when a version that is still
being built wrote it within the grace period (that run may yet commit).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pipeline.config import Settings
from pipeline.provenance import connect
from pipeline.storage import open_store

SHARDS_PREFIX = "shards/"


def collect_garbage(
    settings: Settings, dry_run: bool = False, grace_hours: float = 24
) -> list[str]:
    """Delete (or with `dry_run`, only list) unreferenced shard objects; returns their keys."""
    store = open_store(settings.store)
    referenced: set[str] = set()
    for key in store.list("versions/"):
        if key.endswith("/manifest.json"):
            referenced.update(s["path"] for s in json.loads(store.get(key))["shards"])
    referenced |= _in_flight(settings, grace_hours)
    garbage = [key for key in store.list(SHARDS_PREFIX) if key not in referenced]
    if not dry_run:
        for key in garbage:
            store.delete(key)
    return garbage


def _in_flight(settings: Settings, grace_hours: float) -> set[str]:
    since = datetime.now(UTC) - timedelta(hours=grace_hours)
    prov = connect(settings, write=False)
    try:
        building = [
            v["_id"]
            for v in prov.versions()
            if v.get("status") == "building" and v["updated_at"] >= since
        ]
        return {path for version in building for path in prov.shard_members(version)}
    finally:
        prov.close()
